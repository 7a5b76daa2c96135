"""eval.py reproduces the metric training logged for the same checkpoint, from the checkpoint alone."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from seglab.data.datasets import SyntheticShapes
from seglab.data.palette import default_palette
from seglab.errors import UserError
from seglab.evaluate import evaluate
from seglab.metrics import SegmentationMetrics
from tests.conftest import make_cfg, run_script


def test_evaluate_reproduces_the_training_metric(trained_run, tmp_path):
    run_dir, train_metrics = trained_run
    cfg = make_cfg(tmp_path, f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", config_name="eval")
    metrics = evaluate(cfg)
    assert metrics["mIoU"] == pytest.approx(train_metrics["val/mIoU"], abs=1e-6)
    assert metrics["IoU"]["disk"] == pytest.approx(train_metrics["val/IoU/disk"], abs=1e-6)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["split"] == "val" and written["mode"] == "whole"
    assert written["mIoU"] == pytest.approx(metrics["mIoU"])
    assert set(written["Acc"]) == set(written["IoU"]) == {"background", "disk", "square", "triangle", "cross"}
    assert written["Acc"]["disk"] == pytest.approx(train_metrics["val/Acc/disk"], abs=1e-6)


def test_eval_script_needs_only_the_checkpoint(trained_run, tmp_path):
    run_dir, train_metrics = trained_run
    result = run_script("eval.py", f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["mIoU"] == pytest.approx(train_metrics["val/mIoU"], abs=1e-6)
    assert "disk" in result.stdout + result.stderr  # the per-class table is printed
    assert "Acc" in result.stdout + result.stderr


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        evaluate(make_cfg(tmp_path, f"ckpt_path={tmp_path / 'nope.ckpt'}", config_name="eval"))


def _evaluate(run_dir, out_dir, *overrides):
    return evaluate(make_cfg(out_dir, f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", *overrides, config_name="eval"))


def test_slide_mode_with_one_window_per_image_reproduces_whole_inference(trained_run, tmp_path):
    run_dir, train_metrics = trained_run  # synthetic images are 64x64, the training crop: one window each
    metrics = _evaluate(run_dir, tmp_path, "eval.mode=slide")
    assert metrics["mode"] == "slide"
    assert metrics["mIoU"] == pytest.approx(train_metrics["val/mIoU"], abs=1e-6)


@pytest.mark.parametrize(
    "overrides",
    [
        ["inference=slide", "inference.crop_size=[48,40]", "inference.stride=[16,24]"],
        ["eval.mode=tta", "inference=tta", "inference.scales=[1.0]", "inference.flip=true"],
    ],
    ids=["slide", "tta"],
)
def test_tuned_inference_modes_score_the_split(trained_run, tmp_path, overrides):
    run_dir, train_metrics = trained_run
    metrics = _evaluate(run_dir, tmp_path, *overrides)
    assert metrics["mode"] == overrides[0].split("=")[1]
    # Same model, other views of the images: close to whole inference, not identical.
    assert metrics["mIoU"] == pytest.approx(train_metrics["val/mIoU"], abs=0.15)
    assert metrics["mIoU"] != train_metrics["val/mIoU"]


def test_mode_given_twice_must_agree(trained_run, tmp_path):
    with pytest.raises(UserError, match="disagree"):
        _evaluate(trained_run[0], tmp_path, "eval.mode=tta", "inference=slide")


def test_png_export_holds_the_predictions_that_were_scored(trained_run, tmp_path):
    run_dir, _ = trained_run
    metrics = _evaluate(run_dir, tmp_path, "export.format=png")
    dataset = SyntheticShapes("val", lengths={"val": 32})
    recomputed = SegmentationMetrics(num_classes=5)
    for index in range(len(dataset)):
        preds = np.asarray(Image.open(tmp_path / "predictions" / f"val_{index:06d}.png"))
        recomputed.update(torch.from_numpy(preds), torch.from_numpy(dataset.generate(index)[1]))
    assert recomputed.compute()["mIoU"].item() == pytest.approx(metrics["mIoU"], abs=1e-6)


def test_color_export_shows_the_colour_mask_beside_the_overlay(trained_run, tmp_path):
    run_dir, _ = trained_run
    _evaluate(run_dir, tmp_path, "export.format=color")
    files = sorted((tmp_path / "predictions").glob("*.png"))
    assert len(files) == 32
    picture = np.asarray(Image.open(files[0]))
    assert picture.shape == (64, 128, 3)
    mask_colours = {tuple(c) for c in picture[:, :64].reshape(-1, 3)}
    assert mask_colours <= set(default_palette(5))
    image = SyntheticShapes("val", lengths={"val": 32}).generate(0)[0]
    # The right half blends the mask colours (left half) with the image, half and half.
    expected = (image.astype(float) + picture[:, :64]) / 2
    assert np.abs(picture[:, 64:] - expected).max() <= 1.0


def test_cityscapes_export_of_other_data_is_a_clear_error(trained_run, tmp_path):
    with pytest.raises(UserError, match="export.format=cityscapes needs Cityscapes image names"):
        _evaluate(trained_run[0], tmp_path, "export.format=cityscapes")
