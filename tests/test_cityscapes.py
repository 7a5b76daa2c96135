"""Cityscapes: the official label table, the published layout, instance targets, bad input, one training step."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from cityscapesscripts.evaluation.instance import Instance
from cityscapesscripts.helpers.labels import id2label
from cityscapesscripts.helpers.labels import labels as official_labels
from hydra.utils import instantiate
from PIL import Image

from seglab.commands.train import train
from seglab.config.compose import compose_config
from seglab.data.datasets import CityscapesDataset
from seglab.data.datasets.cityscapes_labels import CLASS_NAMES, LABELS, id_to_train_id_lut
from seglab.runtime.errors import UserError

from tests.helpers import RECORD_VALIDATION, assert_miou_is_recomputed, assert_one_line_error, make_cfg, run_in_process
from tests.helpers.cityscapes_tree import write_cityscapes_tree


@pytest.fixture(scope="module")
def cityscapes_root(tmp_path_factory):
    return write_cityscapes_tree(tmp_path_factory.mktemp("cityscapes"))


def test_label_table_equals_cityscapesscripts():
    ours = [tuple(label) for label in LABELS]
    theirs = [(l.name, l.id, l.trainId, l.category, l.hasInstances, l.ignoreInEval, l.color) for l in official_labels]
    assert ours == theirs
    assert len(CLASS_NAMES) == 19


def test_dataset_maps_label_ids_to_train_ids_as_the_official_table(cityscapes_root):
    dataset = CityscapesDataset(cityscapes_root, "train")
    assert len(dataset) == 4 and dataset.samples[0][0].name == "aachen_000000_000019_leftImg8bit.png"
    official = {l.id: (l.trainId if 0 <= l.trainId < 255 else 255) for l in official_labels if l.id >= 0}
    for index, (_, label_path) in enumerate(dataset.samples):
        raw = np.asarray(Image.open(label_path))
        expected = np.vectorize(official.get)(raw)
        assert np.array_equal(dataset[index]["mask"].numpy(), expected)
    assert {0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18, 29, 30} <= set(np.unique(raw)), "void ids are exercised"
    assert dataset[0]["name"] == "aachen_000000_000019"


def test_lut_maps_every_unknown_id_to_ignore():
    lut = id_to_train_id_lut()
    assert lut[34:].tolist() == [255] * (256 - 34)


def test_missing_root_and_foreign_tree_give_clear_messages(tmp_path):
    with pytest.raises(UserError, match="data.root is not set"):
        CityscapesDataset(None, "train")
    with pytest.raises(UserError, match=f"{tmp_path / 'nope'}.*does not exist"):
        CityscapesDataset(tmp_path / "nope", "train")
    with pytest.raises(UserError, match=r"leftImg8bit.*is missing.*gtFine"):
        CityscapesDataset(tmp_path, "train")


def test_image_without_label_is_named(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cs", per_city=1)
    label = next((root / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))
    label.unlink()
    with pytest.raises(UserError, match=label.name):
        CityscapesDataset(root, "val")


def test_trains_one_step_on_the_tree(cityscapes_root, tmp_path):
    cfg = make_cfg(
        tmp_path,
        "data=cityscapes",
        f"data.root={cityscapes_root}",
        "model/backbone=resnet18",
        "model.backbone.weights=null",
        "data.crop_size=[32,64]",
        "data.num_workers=0",
        "debug=fdr",
        RECORD_VALIDATION,
    )
    metrics = train(cfg)
    assert_miou_is_recomputed(metrics)
    assert set(f"val/IoU/{name}" for name in CLASS_NAMES) <= set(metrics)
    official = {"val/iIoU", "val/mIoU_category", "val/iIoU_category", "val/iIoU_class/person", "val/IoU_category/flat"}
    assert official <= set(metrics)  # data=cityscapes reports the official evaluation's four scores


@pytest.mark.parametrize("broken", [False, True], ids=["trains", "names-the-broken-file"])
def test_a_training_split_of_one_image_with_the_default_batch_of_two(tmp_path, broken):
    root = write_cityscapes_tree(tmp_path / "cs", per_city=1)
    for folder in ("leftImg8bit", "gtFine"):
        shutil.rmtree(root / folder / "train" / "bochum")  # one image left: aachen's
    label = next((root / "gtFine" / "train").rglob("*_gtFine_labelIds.png"))
    if broken:
        Image.fromarray(np.zeros((32, 64), dtype=np.uint8), mode="L").save(label)
    cfg = make_cfg(tmp_path / "run", "data=cityscapes", f"data.root={root}", "model/backbone=resnet18",
                   "model.backbone.weights=null", "data.crop_size=[32,64]", "data.num_workers=0", "debug=fdr", RECORD_VALIDATION)
    assert cfg.data.batch_size == 2
    if broken:  # the file's own message, not one about an empty schedule
        with pytest.raises(UserError, match=rf"is 128x64 but its label map {label} is 64x32"):
            train(cfg)
    else:
        assert_miou_is_recomputed(train(cfg))


def test_bad_root_exits_with_one_clear_message(tmp_path):
    result = run_in_process("train.py", "data=cityscapes", f"data.root={tmp_path / 'missing'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(result, str(tmp_path / "missing"), "leftImg8bit")


def test_instance_targets_follow_the_official_instance_ids(cityscapes_root):
    dataset = CityscapesDataset(cityscapes_root, "val", return_instances=True)
    thing_train_ids = {l.trainId for l in official_labels if l.hasInstances and not l.ignoreInEval}
    assert thing_train_ids == set(compose_config("train", ["data=cityscapes"]).data.thing_ids)
    for index, (_, label_path) in enumerate(dataset.samples):
        raw = np.asarray(Image.open(str(label_path).replace("_labelIds", "_instanceIds"))).astype(np.int64)
        expected = {}  # instance id -> (train id, crowd), read with cityscapesScripts' own Instance class
        for inst_id in np.unique(raw):
            instance = Instance(raw, inst_id)
            if id2label[instance.labelID].trainId in thing_train_ids:
                expected[int(inst_id)] = (id2label[instance.labelID].trainId, inst_id < 1000)
        targets = dataset[index]["instances"]
        found = {}
        for mask, label, crowd in zip(targets["masks"].bool(), targets["labels"], targets["iscrowd"]):
            inst_id = int(raw[mask.numpy()][0])
            assert np.array_equal(mask.numpy(), raw == inst_id)
            found[inst_id] = (int(label), bool(crowd))
        assert found == expected
    assert any(crowd for _, crowd in expected.values()) and not all(crowd for _, crowd in expected.values())
    assert not {inst_id // 1000 for inst_id in found} & {29, 30}, "caravan and trailer have no train id"


def test_train_extra_reads_coarse_annotations_and_splits_concatenate(cityscapes_root):
    extra = CityscapesDataset(cityscapes_root, "train_extra")
    assert len(extra) == 2 and all("gtCoarse" in str(label) for _, label in extra.samples)
    cfg = compose_config("train", ["data=cityscapes", f"data.root={cityscapes_root}", "data.train_split=train+train_extra"])
    datamodule = instantiate(cfg.data, _convert_="partial")
    datamodule.setup("fit")
    assert len(datamodule.datasets["train"]) == 4 + 2


def test_unknown_label_ids_are_named_or_ignored_with_one_warning(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cs", per_city=2)
    label_path = sorted((root / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))[0]
    raw = np.asarray(Image.open(label_path)).copy()
    raw[:2, :3] = 40
    Image.fromarray(raw, mode="L").save(label_path)
    with pytest.raises(UserError, match=rf"{label_path.name} has label values \[40\].*data.strict_labels=false"):
        CityscapesDataset(root, "val")[0]
    lenient = CityscapesDataset(root, "val", strict_labels=False)
    with pytest.warns(UserWarning, match="mapped|maps them to 255") as record:
        masks = [lenient[i]["mask"] for i in (0, 0)]
    assert len(record) == 1 and (masks[0][:2, :3] == 255).all()


def test_mismatched_sizes_missing_images_and_instance_maps_are_named(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cs", per_city=1)
    label = next((root / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))
    Image.fromarray(np.zeros((32, 64), dtype=np.uint8), mode="L").save(label)
    with pytest.raises(UserError, match=r"is 128x64 but its label map .*labelIds.png is 64x32"):
        CityscapesDataset(root, "val")[0]
    next((root / "leftImg8bit" / "val").rglob("*.png")).unlink()
    with pytest.raises(UserError, match=rf"label map {label} has no image: .*_leftImg8bit.png is missing"):
        CityscapesDataset(root, "val")
    instance_map = next((root / "gtFine" / "train").rglob("*_instanceIds.png"))
    instance_map.unlink()
    CityscapesDataset(root, "train")  # semantic runs do not need instance maps
    with pytest.raises(UserError, match=f"{instance_map.name} is missing"):
        CityscapesDataset(root, "train", return_instances=True)
    with pytest.raises(UserError, match=f"{instance_map.name} is missing .*data.cityscapes_scores=false"):
        CityscapesDataset(root, "train", instance_ids=True)


def test_instance_batches_from_the_datamodule(cityscapes_root):
    cfg = compose_config(
        "train", ["data=cityscapes", f"data.root={cityscapes_root}", "data.return_instances=true", "data.crop_size=[32,64]", "data.num_workers=0"]
    )
    datamodule = instantiate(cfg.data, _convert_="partial")
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 64) and len(batch["instances"]) == 2
    for target, mask in zip(batch["instances"], batch["mask"]):
        assert target["masks"].shape[-2:] == (32, 64)
        for instance, label in zip(target["masks"].bool(), target["labels"]):
            assert (mask[instance] == label).all() or (mask[instance] == 255).all()
    assert torch.cat([t["labels"] for t in batch["instances"]]).min() >= 11


def test_evaluation_batches_carry_the_instance_ids_only_when_the_official_scores_are_on(cityscapes_root):
    options = ["data=cityscapes", f"data.root={cityscapes_root}", "data.crop_size=[32,64]", "data.num_workers=0"]
    cfg = compose_config("train", options)
    assert cfg.model.cityscapes_scores is True
    datamodule = instantiate(cfg.data, _convert_="partial")
    datamodule.setup("fit")
    val_batch = next(iter(datamodule.val_dataloader()))
    assert "instance_ids" not in next(iter(datamodule.train_dataloader()))  # the training loader reads no extra file
    raw = np.asarray(Image.open(str(datamodule.datasets["val"].samples[0][1]).replace("_labelIds", "_instanceIds")))
    assert val_batch["instance_ids"].shape == (1, 64, 128) and np.array_equal(val_batch["instance_ids"][0].numpy(), raw)
    off = compose_config("train", [*options, "data.cityscapes_scores=false"])
    assert off.model.cityscapes_scores is False
    datamodule = instantiate(off.data, _convert_="partial")
    datamodule.setup("validate")
    assert "instance_ids" not in next(iter(datamodule.val_dataloader()))


def test_the_official_scores_need_cityscapes_classes_and_instance_ids():
    from seglab.config.builders import instantiate_part

    tiny = ["model/backbone=resnet18", "model.backbone.weights=null"]
    with pytest.raises(UserError, match="scores the 19 Cityscapes classes, but the data has 5"):
        instantiate_part(compose_config("train", [*tiny, "model.cityscapes_scores=true"]).model)
    module = instantiate_part(compose_config("train", [*tiny, "data=cityscapes"]).model)
    batch = {"image": torch.zeros(1, 3, 32, 64), "mask": torch.zeros(1, 32, 64, dtype=torch.long)}
    with pytest.raises(UserError, match="no Cityscapes instance ids.*data.cityscapes_scores=true"):
        module.eval().validation_step(batch, 0)


def test_mask_rcnn_on_cityscapes_reports_the_official_instance_ap(tmp_path):
    from seglab.config.builders import build_datamodule, instantiate_part

    root = write_cityscapes_tree(tmp_path, block=16)  # instances of 256 pixels: above the official minimum of 100
    options = ["model=maskrcnn", "data=cityscapes", f"data.root={root}", "model/backbone=resnet18", "model.backbone.weights=null",
               "data.num_workers=0", "model.detections_per_image=10", "+model.detector_options.rpn_post_nms_top_n_test=50"]
    cfg = compose_config("train", options)
    datamodule = build_datamodule(cfg)  # with instance targets: the task asks for them
    datamodule.setup("validate")
    module = instantiate_part(cfg.model).eval()
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            module.validation_step(batch, 0)
    scores = module.compute_scores(module.val_metrics)
    assert {"mAP", "AP_cityscapes", "AP50_cityscapes"} <= set(scores)
    assert 0.0 <= scores["AP_cityscapes"] <= scores["AP50_cityscapes"] <= 1.0  # a number: there is ground truth


def test_instance_weights_and_categories_are_the_official_ones():
    from cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling import args
    from cityscapesscripts.helpers.labels import category2labels

    from seglab.data.datasets.cityscapes_labels import AVERAGE_INSTANCE_SIZE, CATEGORIES, INSTANCE_CATEGORIES

    thing_names = {CLASS_NAMES[i] for i in compose_config("train", ["data=cityscapes"]).data.thing_ids}
    assert AVERAGE_INSTANCE_SIZE == {name: args.avgClassSize[name] for name in thing_names}
    assert set(CATEGORIES) == set(category2labels) - {"void"}
    assert set(INSTANCE_CATEGORIES) == {"human", "vehicle"}
