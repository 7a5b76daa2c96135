"""COCO: polygon, RLE and crowd annotations through pycocotools, category ids mapped both ways, bad input, training."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra.utils import instantiate

from seglab.config import compose_config
from seglab.data.datasets import COCOSegmentation
from seglab.errors import UserError
from seglab.train import train
from tests.conftest import make_cfg
from tests.dataset_trees import COCO_CATEGORY_IDS, write_coco_tree

CLASS_NAMES = list(compose_config("train", ["data=coco"]).data.class_names)


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    return root, write_coco_tree(root, CLASS_NAMES)


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


def _edit_json(root, edit):
    path = root / "annotations" / "instances_val2017.json"
    content = json.loads(path.read_text())
    edit(content)
    path.write_text(json.dumps(content))
    return path


def test_bad_input_gives_one_clear_message(tmp_path):
    root = tmp_path / "coco"
    write_coco_tree(root, CLASS_NAMES)
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
    cfg = make_cfg(tmp_path, "data=coco", *overrides, "model/backbone=resnet18", "model.backbone.weights=null", "debug=fdr")
    metrics = train(cfg)
    assert 0.0 <= metrics["val/mIoU"] <= 1.0 and "val/IoU/toothbrush" in metrics
