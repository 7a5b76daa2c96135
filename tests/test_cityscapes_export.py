"""Cityscapes export: label-id PNGs in the official layout, scored by cityscapesScripts exactly as by seglab."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.data.datasets import CityscapesDataset
from seglab.data.datasets.cityscapes_labels import LABELS
from seglab.evaluate import evaluate
from seglab.inference.writers import save_cityscapes
from seglab.metrics import SegmentationMetrics
from seglab.train import train
from tests.cityscapes_tree import write_cityscapes_tree
from tests.conftest import make_cfg

TINY_CITYSCAPES = [
    "data=cityscapes",
    "model/backbone=resnet18",
    "model.backbone.weights=null",
    "data.crop_size=[32,64]",
    "data.batch_size=2",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.accelerator=cpu",
    "trainer.num_sanity_val_steps=0",
    "logger=none",
]


@pytest.fixture(scope="module")
def cityscapes_root(tmp_path_factory):
    root = write_cityscapes_tree(tmp_path_factory.mktemp("cityscapes"))
    for label in (root / "gtFine" / "test").rglob("*_labelIds.png"):  # as published: test labels are all void
        Image.fromarray(np.zeros((64, 128), np.uint8)).save(label)
    return root


@pytest.fixture(scope="module")
def cityscapes_checkpoint(cityscapes_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cityscapes_run")
    train(make_cfg(run_dir, *TINY_CITYSCAPES, f"data.root={cityscapes_root}"))
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture
def official_miou(monkeypatch, tmp_path):
    """mIoU (``averageScoreClasses``) of cityscapesScripts' evalPixelLevelSemanticLabeling on the val split."""
    monkeypatch.setattr(np, "in1d", np.isin, raising=False)  # cityscapesScripts 2.3 still calls numpy.in1d
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    def score(root, results) -> float:
        args = official.args
        for name, value in dict(
            cityscapesPath=str(root), predictionPath=str(results), predictionWalk=None, evalInstLevelScore=False,
            quiet=True, JSONOutput=True, exportFile=str(tmp_path / "official.json"),
        ).items():
            monkeypatch.setattr(args, name, value)
        ground_truth = sorted((root / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
        predictions = [official.getPrediction(args, str(gt)) for gt in ground_truth]  # finds ours by name
        official.evaluateImgLists(predictions, [str(gt) for gt in ground_truth], args)
        return json.loads((tmp_path / "official.json").read_text())["averageScoreClasses"]

    return score


def test_exported_label_ids_score_the_same_mIoU_as_cityscapesscripts(cityscapes_root, official_miou, tmp_path):
    dataset = CityscapesDataset(cityscapes_root, "val")
    metrics = SegmentationMetrics(num_classes=19)
    rng = np.random.default_rng(0)
    for sample in dataset:
        target = sample["mask"].numpy()
        # Mostly right, some pixels wrong; road (0) is never predicted and bicycle (18) everywhere there is void.
        preds = np.where(rng.random(target.shape) < 0.3, rng.integers(1, 19, target.shape), target)
        preds = np.where(target == 255, 18, np.where(preds == 0, 1, preds)).astype(np.uint8)
        metrics.update(torch.from_numpy(preds), torch.from_numpy(target))
        path = save_cityscapes(preds, sample["name"], tmp_path / "results")
        assert path.relative_to(tmp_path / "results").as_posix() == f"frankfurt/{sample['name']}_leftImg8bit.png"
    ours = metrics.compute()["mIoU"].item()
    assert 0.2 < ours < 0.9
    assert official_miou(cityscapes_root, tmp_path / "results") == pytest.approx(ours, abs=1e-6)


def test_eval_export_matches_cityscapesscripts(cityscapes_root, cityscapes_checkpoint, official_miou, tmp_path):
    cfg = make_cfg(tmp_path, f"ckpt_path={cityscapes_checkpoint}", "export.format=cityscapes", config_name="eval")
    metrics = evaluate(cfg)
    exported = sorted((tmp_path / "predictions").rglob("*.png"))
    assert [p.relative_to(tmp_path / "predictions").as_posix() for p in exported] == [
        f"frankfurt/frankfurt_00000{i}_0000{19 + i}_leftImg8bit.png" for i in range(2)
    ]
    label_ids = set(np.unique(np.concatenate([np.asarray(Image.open(p)).ravel() for p in exported])).tolist())
    assert label_ids <= {label.id for label in LABELS if 0 <= label.train_id < 255}  # label ids, not train ids
    assert metrics["mIoU"] == pytest.approx(official_miou(cityscapes_root, tmp_path / "predictions"), abs=1e-6)


def test_unlabelled_test_split_gets_predictions_without_scores(cityscapes_checkpoint, tmp_path):
    cfg = make_cfg(
        tmp_path, f"ckpt_path={cityscapes_checkpoint}", "eval.split=test", "export.format=cityscapes", config_name="eval"
    )
    metrics = evaluate(cfg)
    assert "mIoU" not in metrics and metrics["split"] == "test"
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["export"]["format"] == "cityscapes" and "IoU" not in written
    exported = sorted(p.relative_to(tmp_path / "predictions").as_posix() for p in (tmp_path / "predictions").rglob("*.png"))
    assert exported == [f"berlin/berlin_00000{i}_0000{19 + i}_leftImg8bit.png" for i in range(2)]
    assert Image.open(tmp_path / "predictions" / exported[0]).size == (128, 64)  # the image's own resolution
