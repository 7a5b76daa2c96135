"""Training end to end: fast dev runs of each preset, learning on synthetic data, run directory, resume, splits smaller
than a batch."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from seglab.errors import UserError
from seglab.train import train
from tests.conftest import QUICK, TINY, make_cfg
from tests.probes import ResumeProbe, momentum_buffers
from tests.test_presets import PRESETS


@pytest.mark.parametrize("preset", PRESETS)
def test_fast_dev_run_of_each_preset(preset, tmp_path):
    metrics = train(make_cfg(tmp_path, f"model={preset}", "debug=fdr", "data.dataset.image_size=[32,32]"))
    assert 0.0 <= metrics["val/mIoU"] <= 1.0


def test_training_raises_miou_well_above_chance(trained_run):
    run_dir, metrics = trained_run
    # Predicting background everywhere scores about 0.17 mIoU on this data (background IoU ~0.83 / 5 classes).
    assert metrics["val/mIoU"] > 0.35, metrics


def test_run_directory_holds_config_checkpoints_logs_and_metrics(trained_run):
    run_dir, metrics = trained_run
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert "name: resnet18" in (run_dir / "resolved_config.yaml").read_text()
    assert "val/mIoU" in (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0]
    written = json.loads((run_dir / "metrics.json").read_text())
    assert written["val/mIoU"] == pytest.approx(metrics["val/mIoU"])
    assert {"val/mIoU", "val/mAcc", "val/aAcc", "val/fwIoU", "val/IoU/disk"} <= set(written)


def test_resume_restores_step_optimizer_and_schedule(trained_run, tmp_path):
    run_dir, _ = trained_run
    last = run_dir / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    epochs_done = checkpoint["epoch"] + 1
    cfg = make_cfg(
        tmp_path, *TINY, f"ckpt_path={last}", f"trainer.max_epochs={epochs_done + 1}", "+callbacks.probe._target_=tests.probes.ResumeProbe"
    )
    train(cfg)
    seen = ResumeProbe.seen
    assert seen["global_step"] == checkpoint["global_step"]
    assert seen["epoch"] == epochs_done
    assert seen["lr"] == pytest.approx(checkpoint["lr_schedulers"][0]["_last_lr"][-1])
    saved = momentum_buffers(checkpoint)
    assert len(saved) == len(seen["momentum_buffers"]) > 0
    assert all(torch.equal(a, b) for a, b in zip(saved, seen["momentum_buffers"]))


def test_a_split_smaller_than_one_batch_trains_a_step_per_epoch(tmp_path):
    cfg = make_cfg(tmp_path, *QUICK, "data.dataset.lengths={train: 3, val: 4, test: 4}", "trainer.max_epochs=2")
    assert cfg.data.batch_size == 8
    metrics = train(cfg)
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    assert [row["step"] for row in rows if row["train/loss_step"]] == ["0", "1"]  # one step in each epoch
    assert 0.0 <= metrics["val/mIoU"] <= 1.0


def test_no_training_batch_at_all_is_one_message(tmp_path):
    with pytest.raises(UserError, match=r"^the run has no training step \(trainer.limit_train_batches leaves no batch "
                                        r"of the training split\), so .*; raise trainer.limit_train_batches or leave it out$"):
        train(make_cfg(tmp_path, *QUICK, "+trainer.limit_train_batches=0"))
