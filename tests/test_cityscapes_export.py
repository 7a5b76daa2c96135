"""Cityscapes export: label-id PNGs in the official layout, scored by cityscapesScripts exactly as by seglab (class
and category IoU and iIoU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.commands.evaluate import evaluate
from seglab.commands.train import train
from seglab.data.datasets import CityscapesDataset
from seglab.data.datasets.cityscapes_labels import CATEGORIES, CLASS_NAMES, LABELS, THING_TRAIN_IDS
from seglab.metrics.cityscapes_pixel import CityscapesSegmentationMetrics
from seglab.writers.semantic import save_cityscapes

from tests.helpers import make_cfg
from tests.helpers.cityscapes_tree import write_cityscapes_tree

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
def cityscapes_export_root(tmp_path_factory):
    # 16x16 blocks, some holding four 8x8 instances: instances of two sizes weigh differently in iIoU.
    root = write_cityscapes_tree(tmp_path_factory.mktemp("cityscapes"), block=16, quarters=0.5)
    for label in (root / "gtFine" / "test").rglob("*_labelIds.png"):  # as published: test labels are all void
        Image.fromarray(np.zeros((64, 128), np.uint8)).save(label)
    return root


@pytest.fixture(scope="module")
def cityscapes_checkpoint(cityscapes_export_root, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cityscapes_run")
    train(make_cfg(run_dir, *TINY_CITYSCAPES, f"data.root={cityscapes_export_root}"))
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture
def official_scores(monkeypatch, tmp_path):
    """The results of cityscapesScripts' evalPixelLevelSemanticLabeling on the val split, instance scores on."""
    monkeypatch.setattr(np, "in1d", np.isin, raising=False)  # cityscapesScripts 2.3 still calls numpy.in1d
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    def score(root, results) -> dict:
        args = official.args
        for name, value in dict(
            cityscapesPath=str(root), predictionPath=str(results), predictionWalk=None, evalInstLevelScore=True,
            quiet=True, JSONOutput=True, exportFile=str(tmp_path / "official.json"),
        ).items():
            monkeypatch.setattr(args, name, value)
        ground_truth = sorted((root / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
        predictions = [official.getPrediction(args, str(gt)) for gt in ground_truth]  # finds ours by name
        official.evaluateImgLists(predictions, [str(gt) for gt in ground_truth], args)
        return json.loads((tmp_path / "official.json").read_text())

    return score


def assert_official_scores(ours: dict, theirs: dict) -> None:
    """seglab's logged names (metrics.json layout) against the official json, to 1e-6 (NaN as the official NaN)."""
    close = lambda value: pytest.approx(value, abs=1e-6, nan_ok=True)  # noqa: E731
    assert ours["mIoU"] == close(theirs["averageScoreClasses"])
    assert ours["iIoU"] == close(theirs["averageScoreInstClasses"])
    assert ours["mIoU_category"] == close(theirs["averageScoreCategories"])
    assert ours["iIoU_category"] == close(theirs["averageScoreInstCategories"])
    for name in CLASS_NAMES:
        assert ours["IoU"][name] == close(theirs["classScores"][name]), name
    for name in (CLASS_NAMES[c] for c in THING_TRAIN_IDS):
        assert ours["iIoU_class"][name] == close(theirs["classInstScores"][name]), name
    for name in CATEGORIES:
        assert ours["IoU_category"][name] == close(theirs["categoryScores"][name]), name


def by_group(named: dict) -> dict:
    """``{"iIoU_class/person": v}`` -> ``{"iIoU_class": {"person": v}}``, as metrics.json groups them."""
    grouped: dict = {}
    for key, value in named.items():
        group, _, name = key.partition("/")
        if name:
            grouped.setdefault(group, {})[name] = float(value)
        else:
            grouped[key] = float(value)
    return grouped


def test_exported_label_ids_score_the_four_official_scores_as_cityscapesscripts(cityscapes_export_root, official_scores, tmp_path):
    dataset = CityscapesDataset(cityscapes_export_root, "val", instance_ids=True)
    metrics = CityscapesSegmentationMetrics()
    rng = np.random.default_rng(0)
    for sample in dataset:
        target = sample["mask"].numpy()
        # Mostly right, some pixels wrong; road (0) is never predicted, nor motorcycle (17, absent from the
        # ground truth too), and bicycle (18) everywhere there is void.
        preds = np.where(rng.random(target.shape) < 0.3, rng.integers(1, 19, target.shape), target)
        preds = np.where(target == 255, 18, np.select([preds == 0, preds == 17], [1, 16], preds)).astype(np.uint8)
        metrics.update(torch.from_numpy(preds)[None], torch.from_numpy(target)[None], sample["instance_ids"][None])
        path = save_cityscapes(preds, sample["name"], tmp_path / "results")
        assert path.relative_to(tmp_path / "results").as_posix() == f"frankfurt/{sample['name']}_leftImg8bit.png"
    ours = by_group(metrics.named_scores())
    theirs = official_scores(cityscapes_export_root, tmp_path / "results")
    assert 0.2 < ours["mIoU"] < 0.9 and 0.2 < ours["iIoU"] < 0.9 and ours["iIoU"] != pytest.approx(ours["mIoU"], abs=0.01)
    assert np.isnan(ours["IoU"]["motorcycle"]) and np.isnan(ours["iIoU_class"]["motorcycle"])  # in neither map
    assert ours["IoU"]["sidewalk"] == 0.0  # predicted, not in the ground truth
    assert_official_scores(ours, theirs)


def test_eval_export_matches_cityscapesscripts(cityscapes_export_root, cityscapes_checkpoint, official_scores, tmp_path):
    cfg = make_cfg(tmp_path, f"ckpt_path={cityscapes_checkpoint}", "export.format=cityscapes", config_name="eval")
    metrics = evaluate(cfg)
    exported = sorted((tmp_path / "predictions").rglob("*.png"))
    assert [p.relative_to(tmp_path / "predictions").as_posix() for p in exported] == [
        f"frankfurt/frankfurt_00000{i}_0000{19 + i}_leftImg8bit.png" for i in range(2)
    ]
    label_ids = set(np.unique(np.concatenate([np.asarray(Image.open(p)).ravel() for p in exported])).tolist())
    assert label_ids <= {label.id for label in LABELS if 0 <= label.train_id < 255}  # label ids, not train ids
    assert_official_scores(metrics, official_scores(cityscapes_export_root, tmp_path / "predictions"))


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
