"""eval.py reproduces the metric training logged for the same checkpoint, from the checkpoint alone."""

from __future__ import annotations

import json
import logging
import warnings

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

import seglab.commands.entry as checkpoint_overrides
from seglab.checkpointing.restore import load_trained_model, training_config
from seglab.commands.entry import as_typed, defer_to_checkpoint
from seglab.commands.evaluate import EVAL_ONLY_KEYS, evaluate
from seglab.commands.export import EXPORT_ONLY_KEYS
from seglab.commands.predict import PREDICT_ONLY_KEYS
from seglab.config.builders import build_datamodule, build_model
from seglab.data.datasets import SyntheticShapes
from seglab.metrics import SegmentationMetrics
from seglab.runtime.errors import UserError
from seglab.viz.palette import default_palette

from tests.helpers import assert_one_line_error, make_cfg, run_in_process, run_script


def test_evaluate_reproduces_the_training_metric(trained_run, tmp_path, caplog):
    run_dir, train_metrics = trained_run
    cfg = make_cfg(tmp_path, f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", config_name="eval")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, logger="seglab"):
        warnings.simplefilter("always")
        metrics = evaluate(cfg)
    assert not [w for w in caught if "callbacks used to create the checkpoint" in str(w.message)]  # says nothing here
    summary = caplog.text[caplog.text.index("Evaluation finished: "):]
    assert summary.startswith(f"Evaluation finished: {tmp_path}\n  checkpoint    {run_dir / 'checkpoints' / 'best.ckpt'}\n")
    assert "  metrics       metrics.json\n  trimap curve  trimap_curve.png\n" in summary
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


def test_png_export_holds_the_predictions_that_were_scored(trained_run, tmp_path, caplog):
    run_dir, _ = trained_run
    with caplog.at_level(logging.INFO, logger="seglab"):
        metrics = _evaluate(run_dir, tmp_path, "export.format=png")
    assert "\n  predictions   predictions/  (32 png)\n" in caplog.text  # in the closing summary
    dataset = SyntheticShapes("val", lengths={"val": 32})
    recomputed = SegmentationMetrics(num_classes=5)
    for index in range(len(dataset)):
        preds = np.asarray(Image.open(tmp_path / "predictions" / f"val_{index:06d}.png"))
        recomputed.update(torch.from_numpy(preds), torch.from_numpy(dataset.generate(index)[1]))
    assert recomputed.compute()["mIoU"].item() == pytest.approx(metrics["mIoU"], abs=1e-6)


def test_color_export_shows_the_colour_mask_beside_the_overlay_above_a_legend(trained_run, tmp_path):
    run_dir, _ = trained_run
    _evaluate(run_dir, tmp_path, "export.format=color")
    files = sorted((tmp_path / "predictions").glob("*.png"))
    assert len(files) == 32
    written = np.asarray(Image.open(files[0]))
    assert written.shape[1] == 256 and written.shape[0] > 64  # padded to the legend's width, the legend below
    assert (written[:64, 128:] == 255).all()
    picture, strip = written[:64, :128], written[64:]
    assert {tuple(c) for c in default_palette(5)} <= {tuple(c) for c in strip.reshape(-1, 3).tolist()}  # the legend
    mask_colours = {tuple(c) for c in picture[:, :64].reshape(-1, 3)}
    assert mask_colours <= set(default_palette(5))
    image = SyntheticShapes("val", lengths={"val": 32}).generate(0)[0]
    # The right half blends the mask colours (left half) with the image, half and half.
    expected = (image.astype(float) + picture[:, :64]) / 2
    assert np.abs(picture[:, 64:] - expected).max() <= 1.0


def test_cityscapes_export_of_other_data_is_a_clear_error(trained_run, tmp_path):
    with pytest.raises(UserError, match="export.format=cityscapes needs Cityscapes image names"):
        _evaluate(trained_run[0], tmp_path, "export.format=cityscapes")


def test_eval_overrides_a_key_of_the_checkpoints_preset_without_plus(panoptic_run, tmp_path):
    """eval.yaml composes the default semantic preset, which has no model.center_threshold: the override is
    applied to the checkpoint's Panoptic-DeepLab config, and the rebuilt config is written beside metrics.json."""
    checkpoint = panoptic_run[0] / "checkpoints" / "best.ckpt"
    result = run_in_process("eval.py", f"ckpt_path={checkpoint}", "model.center_threshold=0.0", "model.top_k=5", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    rebuilt = OmegaConf.load(tmp_path / "resolved_config.yaml")
    assert rebuilt.model.center_threshold == 0.0 and rebuilt.model.top_k == 5
    assert rebuilt.model._target_ == "seglab.tasks.PanopticDeepLabModule"
    assert "PQ" in json.loads((tmp_path / "metrics.json").read_text())
    train_cfg = training_config(checkpoint, ["model.center_threshold=0.0"], EVAL_ONLY_KEYS)
    assert build_model(train_cfg, build_datamodule(train_cfg)).postprocess_options["threshold"] == 0.0


def test_a_key_in_neither_config_is_one_clear_error(panoptic_run, tmp_path):
    """Through python -m seglab export (which shares eval.py's handling of the command line): one line, exit 2."""
    checkpoint = panoptic_run[0] / "checkpoints" / "best.ckpt"
    result = run_in_process("-m", "seglab", "export", f"ckpt_path={checkpoint}", "model.center_treshold=0.0", f"hydra.run.dir={tmp_path}")
    line = assert_one_line_error(result, "Could not override 'model.center_treshold'")
    assert line.startswith(f"error: the overrides do not apply to the config {checkpoint} was trained with")
    assert result.stderr.strip() == line
    with pytest.raises(UserError, match="Could not override 'trainer.max_epoch'"):
        training_config(checkpoint, ["trainer.max_epoch=1"], EVAL_ONLY_KEYS)  # a typo of a key both configs have


@pytest.mark.parametrize("override", ["model=maskrcnn", "model=panoptic_deeplab", "model/backbone=resnet50", "experiment=smoke"])
def test_choosing_another_network_for_a_checkpoint_is_refused(panoptic_run, override):
    """Re-choosing the model preset, its backbone or an experiment would build another network than the
    weights fit (or reset the training run's model options): refused, single keys are the way."""
    checkpoint = panoptic_run[0] / "checkpoints" / "best.ckpt"
    with pytest.raises(UserError, match=rf"{override} would choose another network than the one .*best.ckpt holds"):
        training_config(checkpoint, [override], EVAL_ONLY_KEYS)


def test_an_override_that_reshapes_the_network_is_one_clear_error(trained_run, tmp_path):
    checkpoint = trained_run[0] / "checkpoints" / "best.ckpt"
    train_cfg = training_config(checkpoint, ["model.decoder.out_channels=64"], EVAL_ONLY_KEYS)
    with pytest.raises(UserError, match=r"best.ckpt holds weights that do not fit the model this config builds: \d+ of another shape \(.*: \[.*\] in the checkpoint, \[.*\] in the model\)"):
        load_trained_model(checkpoint, train_cfg)
    with pytest.raises(UserError, match="do not fit the model this config builds"):
        _evaluate(trained_run[0], tmp_path, "model.decoder.out_channels=64")


@pytest.mark.parametrize(
    ("keys", "typed", "hydra_gets"),
    [
        (EVAL_ONLY_KEYS, ["ckpt_path=a.ckpt", "eval.split=test", "export.format=coco"], ["ckpt_path=a.ckpt", "eval.split=test", "export.format=coco"]),
        (EVAL_ONLY_KEYS, ["model.center_threshold=0.0", "+trainer.limit_val_batches=2", "seed=3"],
         ["++model.center_threshold=0.0", "++trainer.limit_val_batches=2", "++seed=3"]),
        (EVAL_ONLY_KEYS, ["inference=slide", "model/backbone=resnet50", "model/decoder@model.instance_decoder=aspp"],
         ["inference=slide", "model/backbone=resnet50", "model/decoder@model.instance_decoder=aspp"]),
        (EVAL_ONLY_KEYS, ["~seed", "++seed=1", "hydra.run.dir=/tmp/x", "-m", "--cfg", "job"], ["~seed", "++seed=1", "hydra.run.dir=/tmp/x", "-m", "--cfg", "job"]),
        (PREDICT_ONLY_KEYS, ["input=a.png", "output_dir=out", "predict.device=cpu", "model.top_k=3"],
         ["input=a.png", "output_dir=out", "predict.device=cpu", "++model.top_k=3"]),
        (EXPORT_ONLY_KEYS, ["format=onnx", "opset=17", "output=m.onnx", "model.decoder.out_channels=64"],
         ["format=onnx", "opset=17", "output=m.onnx", "++model.decoder.out_channels=64"]),
    ],
    ids=["command keys", "training keys", "groups", "deletions, ++, hydra, flags", "predict", "export"],
)  # fmt: skip
def test_hydra_gets_training_keys_with_plus_plus_and_the_checkpoint_gets_them_as_typed(keys, typed, hydra_gets, monkeypatch):
    assert defer_to_checkpoint(typed, keys) == hydra_gets
    monkeypatch.setattr(checkpoint_overrides, "_typed", typed)
    overrides = [a for a in hydra_gets if "=" in a or a.startswith("~")]
    assert as_typed(overrides) == [a for a in typed if "=" in a or a.startswith("~")]


def test_a_multirun_job_gets_its_own_value_as_typed(monkeypatch):
    monkeypatch.setattr(checkpoint_overrides, "_typed", ["-m", "model.center_threshold=0.0,0.5", "+model.new=1,2"])
    assert as_typed(["++model.center_threshold=0.5", "++model.new=2"]) == ["model.center_threshold=0.5", "+model.new=2"]
