"""eval.py reproduces the metric training logged for the same checkpoint, from the checkpoint alone."""

from __future__ import annotations

import json

import pytest

from seglab.errors import UserError
from seglab.evaluate import evaluate
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


def test_eval_script_needs_only_the_checkpoint(trained_run, tmp_path):
    run_dir, train_metrics = trained_run
    result = run_script("eval.py", f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["mIoU"] == pytest.approx(train_metrics["val/mIoU"], abs=1e-6)
    assert "disk" in result.stdout + result.stderr  # the per-class table is printed


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        evaluate(make_cfg(tmp_path, f"ckpt_path={tmp_path / 'nope.ckpt'}", config_name="eval"))
