"""COCO: polygon, RLE and crowd annotations through pycocotools, category ids mapped both ways, bad input, training."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hydra.utils import instantiate

from seglab.commands.train import train
from seglab.config.compose import compose_config
from seglab.data.datasets import COCOSegmentation
from seglab.data.datasets.coco_categories import COCO_2017_CLASS_NAMES
from seglab.runtime.errors import UserError, exit_on_user_error

from tests.helpers import RECORD_VALIDATION, assert_miou_is_recomputed, make_cfg
from tests.helpers.dataset_trees import COCO_CATEGORY_IDS, write_coco_tree

CLASS_NAMES = list(COCO_2017_CLASS_NAMES)
# A custom dataset in COCO's format: three categories with gapped ids.
GAPPED = {3: "person", 7: "car", 12: "sign"}


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    return root, write_coco_tree(root)


def test_semantic_masks_paint_objects_by_class_and_ignore_crowds(coco):
    root, written = coco
    dataset = COCOSegmentation(root, "val2017", class_names=CLASS_NAMES)
    first, empty = written["val2017"]
    sample = dataset[0]
    assert sample["name"] == first["file"].stem and sample["image"].shape[1:] == (40, 60)
    expected = np.zeros((40, 60), dtype=np.uint8)
    for mask, category_id, iscrowd in first["objects"]:
        expected[mask > 0] = 255 if iscrowd else COCO_CATEGORY_IDS.index(category_id) + 1
    assert np.array_equal(sample["mask"].numpy(), expected)
    assert set(np.unique(expected)) == {0, 1, 3, 80, 255}  # person, car, toothbrush (id 90), crowd
    assert (dataset[1]["mask"] == 0).all()  # an image without annotations is background


def test_instance_targets_match_the_annotations(coco):
    root, written = coco
    dataset = COCOSegmentation(root, "val2017", return_instances=True)
    annotations = json.loads((root / "annotations" / "instances_val2017.json").read_text())["annotations"]
    targets = dataset[0]["instances"]
    objects = written["val2017"][0]["objects"]
    assert targets["labels"].tolist() == [1, 3, 80, 1]
    assert targets["iscrowd"].tolist() == [False, False, False, True]
    for mask, (expected, _, _) in zip(targets["masks"], objects):
        assert np.array_equal(mask.numpy(), expected)
    boxes = [[x, y, x + w, y + h] for x, y, w, h in (ann["bbox"] for ann in annotations)]  # COCO bbox is XYWH
    assert targets["boxes"].tolist() == boxes
    assert len(dataset[1]["instances"]["labels"]) == 0 and dataset[1]["instances"]["masks"].shape == (0, 36, 44)


def test_category_ids_map_to_contiguous_classes_and_back(coco):
    root, _ = coco
    dataset = COCOSegmentation(root, "train2017")
    assert tuple(dataset.class_names) == tuple(CLASS_NAMES)
    assert dataset.category_to_class[1] == 1 and dataset.category_to_class[13] == 12 and dataset.category_to_class[90] == 80
    assert all(dataset.category_to_class[dataset.class_to_category[c]] == c for c in range(1, 81))
    assert sorted(dataset.class_to_category.values()) == COCO_CATEGORY_IDS


def _edit_json(root, edit, split="val2017"):
    path = root / "annotations" / f"instances_{split}.json"
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))
    return path


def test_bad_input_gives_one_clear_message(tmp_path):
    root = tmp_path / "coco"
    write_coco_tree(root)
    with pytest.raises(UserError, match=f"annotation file {root}/annotations/instances_test2017.json is missing"):
        COCOSegmentation(root, "test2017")
    with pytest.raises(UserError, match="do not match data.class_names"):
        COCOSegmentation(root, "val2017", class_names=CLASS_NAMES[:-1])
    path = _edit_json(root, lambda c: c["annotations"][0].update(category_id=12))  # 12 is not a COCO category
    with pytest.raises(UserError, match=rf"{path} has label values \[category_id 12\]"):
        COCOSegmentation(root, "val2017")
    with pytest.warns(UserWarning, match="category_id 12"):
        lenient = COCOSegmentation(root, "val2017", strict_labels=False, return_instances=True)
    sample = lenient[0]
    assert (sample["mask"][2:20, 4:10] == 255).all() and sample["instances"]["labels"].tolist() == [3, 80, 1]
    _edit_json(root, lambda c: c["annotations"][0].update(category_id=1, image_id=999))
    with pytest.raises(UserError, match="annotations of image ids it does not list, e.g. 999"):
        COCOSegmentation(root, "val2017")
    _edit_json(root, lambda c: (c["annotations"][0].update(image_id=139), c["images"][0].update(height=41)))
    with pytest.raises(UserError, match=r"000000000139.jpg is 60x40 but .*instances_val2017.json gives 60x41"):
        COCOSegmentation(root, "val2017")[0]
    (root / "val2017" / "000000000140.jpg").unlink()
    with pytest.raises(UserError, match="image .*000000000140.jpg listed in .*instances_val2017.json is missing"):
        COCOSegmentation(root, "val2017")
    _edit_json(root, lambda c: c.update(images=[], annotations=[]))
    with pytest.raises(UserError, match="'val2017' split is empty"):
        COCOSegmentation(root, "val2017")
    (root / "annotations" / "instances_val2017.json").write_text('{"images": [')
    with pytest.raises(UserError, match="instances_val2017.json is not a COCO instances file"):
        COCOSegmentation(root, "val2017")


def test_instance_batches_and_one_training_step(coco, tmp_path):
    root, _ = coco
    overrides = [f"data.root={root}", "data.crop_size=[32,32]", "data.batch_size=2", "data.num_workers=0"]
    datamodule = instantiate(compose_config("train", ["data=coco", "data.return_instances=true", *overrides]).data, _convert_="partial")
    batch = next(iter(datamodule.val_dataloader()))
    assert batch["image"].shape == (1, 3, 40, 60)  # original resolution
    assert isinstance(batch["instances"], list) and len(batch["instances"]) == 1
    cfg = make_cfg(tmp_path, "data=coco", *overrides, "model/backbone=resnet18", "model.backbone.weights=null", "debug=fdr", RECORD_VALIDATION)
    metrics = train(cfg)
    assert_miou_is_recomputed(metrics)
    assert "val/IoU/toothbrush" in metrics


def _data_config(root, *overrides):
    return compose_config("train", ["data=coco", f"data.root={root}", *overrides]).data


@pytest.mark.parametrize(
    ("categories", "objects", "expected"),
    [
        (None, (1, 3, 90), CLASS_NAMES),  # COCO 2017's own json: its 80 categories
        (GAPPED, (3, 7, 12), ["background", "person", "car", "sign"]),
        ({5: "cell"}, (5, 5, 5), ["background", "cell"]),
    ],
    ids=["coco2017", "gapped ids", "one category"],
)
def test_classes_are_the_json_categories_in_id_order(tmp_path, categories, objects, expected):
    write_coco_tree(tmp_path, categories, objects)
    data = _data_config(tmp_path, "data.return_instances=true")
    assert list(data.class_names) == expected and data.num_classes == len(expected)
    assert list(data.thing_ids) == list(range(1, len(expected)))
    datamodule = instantiate(data, _convert_="partial")
    datamodule.setup("fit")
    val_set = datamodule.datasets["val"]
    assert [val_set.class_to_category[c] for c in range(1, len(expected))] == sorted(set(categories or COCO_CATEGORY_IDS))
    sample = val_set[0]  # the semantic and instance targets use the same class ids
    classes = [val_set.category_to_class[c] for c in objects]
    assert sample["instances"]["labels"].tolist() == [*classes, classes[0]]
    assert set(sample["mask"].unique().tolist()) == {0, *classes, 255}


def test_default_classes_without_a_root_are_coco_2017s():
    data = compose_config("train", ["data=coco"]).data
    assert tuple(data.class_names) == COCO_2017_CLASS_NAMES and len(data.thing_ids) == 80


def test_an_explicit_class_list_is_checked_against_the_json(tmp_path):
    write_coco_tree(tmp_path, GAPPED, (3, 7, 12))
    data = _data_config(tmp_path, "data.class_names=[background,person,car,sign]")
    assert data.num_classes == 4 and list(data.thing_ids) == [1, 2, 3]
    instantiate(data, _convert_="partial").setup("fit")
    wrong = instantiate(_data_config(tmp_path, "data.class_names=[background,person,car]"), _convert_="partial")
    with pytest.raises(UserError, match=r"instances_train2017.json \(3: person, car, sign\) do not match data.class_names \(2 after"):
        wrong.setup("fit")


def _class_names_error(root, capsys) -> str:
    """What ``train.py data=coco data.root=<root>`` prints when the class names cannot be read: one line, exit 2."""
    cfg = compose_config("train", ["data=coco", f"data.root={root}"])
    with pytest.raises(SystemExit) as exit_info:
        exit_on_user_error(lambda config: list(config.data.class_names))(cfg)
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(lines) == 1
    return lines[0]


def test_splits_with_different_categories_are_one_error_naming_both_files(tmp_path, capsys):
    write_coco_tree(tmp_path, GAPPED, (3, 7, 12))
    train_file = tmp_path / "annotations" / "instances_train2017.json"
    val_file = _edit_json(tmp_path, lambda c: c["categories"][2].update(name="truck"))
    message = _class_names_error(tmp_path, capsys)
    assert f"{train_file} and {val_file} list different categories" in message
    assert "only in the first: sign; only in the second: truck" in message
    _edit_json(tmp_path, lambda c: c["categories"].__setitem__(2, {"id": 2, "name": "sign"}))  # sign before person
    assert "the same names in another id order" in _class_names_error(tmp_path, capsys)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (lambda c: c.pop("categories"), "instances_val2017.json lists no categories; a COCO instances file names"),
        (lambda c: c.update(categories=[]), "instances_val2017.json lists no categories"),
        (lambda c: c["categories"][0].pop("name"), r"the category \{'id': 3, 'supercategory': 'thing'\} needs an integer 'id' and a 'name'"),
        (lambda c: c["categories"][1].update(id=3), "lists category id 3 more than once"),
        (lambda c: c["categories"][1].update(name="person"), r"categories \[3, 7\] have the same name and supercategory \(person \(thing\)\)"),
    ],
    ids=["no categories", "empty", "no name", "repeated id", "same name"],
)
def test_malformed_categories_are_one_clear_error(tmp_path, capsys, edit, error):
    write_coco_tree(tmp_path, GAPPED, (3, 7, 12))
    (tmp_path / "annotations" / "instances_train2017.json").unlink()  # the val file is the one read
    _edit_json(tmp_path, edit)
    assert re.search(error, _class_names_error(tmp_path, capsys))
    with pytest.raises(UserError, match=error):
        COCOSegmentation(tmp_path, "val2017")


def test_shared_names_get_their_supercategory_and_unused_categories_stay_classes(tmp_path):
    write_coco_tree(tmp_path, GAPPED, (3, 7, 12))
    for split in ("train2017", "val2017"):
        _edit_json(tmp_path, lambda c: c["categories"].extend([
            {"id": 20, "name": "car", "supercategory": "toy"},  # no annotation uses it
            {"id": 21, "name": "background", "supercategory": "scene"},
        ]), split)  # fmt: skip
    names = ["background", "person", "car (thing)", "sign", "car (toy)", "background (scene)"]
    assert list(_data_config(tmp_path).class_names) == names
    dataset = COCOSegmentation(tmp_path, "val2017", return_instances=True)
    assert list(dataset.class_names) == names and dataset.class_to_category[4] == 20
    assert 4 not in dataset[0]["mask"].unique().tolist()


def test_categories_are_read_wherever_the_json_lists_them(tmp_path):
    """COCO's files end with their categories (read from the end of the file); other files list them anywhere,
    and a "categories" key nested at the end of the file is not the top-level one."""
    write_coco_tree(tmp_path, GAPPED, (3, 7, 12))
    path = tmp_path / "annotations" / "instances_val2017.json"
    content = json.loads(path.read_text())
    layouts = {
        "last": {key: content[key] for key in ("images", "annotations", "categories")},
        "first": {key: content[key] for key in ("categories", "images", "annotations")},
        "nested decoy": {**content, "info": {"categories": [{"id": 1, "name": "decoy"}]}},
    }
    (tmp_path / "annotations" / "instances_train2017.json").unlink()
    for layout in layouts.values():
        path.write_text(json.dumps(layout, indent=1))
        assert list(_data_config(tmp_path).class_names) == ["background", "person", "car", "sign"]


def test_the_val_file_missing_stops_training_and_the_train_file_alone_names_the_classes(tmp_path, capsys):
    write_coco_tree(tmp_path, GAPPED, (3, 7, 12))
    (tmp_path / "annotations" / "instances_val2017.json").unlink()
    data = _data_config(tmp_path)
    assert list(data.class_names) == ["background", "person", "car", "sign"]
    with pytest.raises(UserError, match=r"annotation file .*instances_val2017.json is missing"):
        instantiate(data, _convert_="partial").setup("fit")
    (tmp_path / "annotations" / "instances_train2017.json").unlink()
    assert re.search(r"annotation file .*instances_train2017.json is missing", _class_names_error(tmp_path, capsys))
