"""Cityscapes: the official label table, the published layout, bad roots, and one training step."""

from __future__ import annotations

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as official_labels
from PIL import Image

from seglab.data.datasets import CityscapesDataset
from seglab.data.datasets.cityscapes_labels import CLASS_NAMES, LABELS, id_to_train_id_lut
from seglab.errors import UserError
from seglab.train import train
from tests.cityscapes_tree import write_cityscapes_tree
from tests.conftest import make_cfg, run_script


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
    )
    metrics = train(cfg)
    assert 0.0 <= metrics["val/mIoU"] <= 1.0
    assert set(f"val/IoU/{name}" for name in CLASS_NAMES) <= set(metrics)


def test_bad_root_exits_with_one_clear_message(tmp_path):
    result = run_script("train.py", "data=cityscapes", f"data.root={tmp_path / 'missing'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0
    assert str(tmp_path / "missing") in result.stderr and "leftImg8bit" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
