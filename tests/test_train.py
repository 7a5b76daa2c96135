"""Training end to end: fast dev runs of each preset, learning on synthetic data, run directory, resume, splits smaller
than a batch."""

from __future__ import annotations

import csv
import json
import logging

import pytest
import torch

from seglab.checkpointing.io import load_checkpoint
from seglab.commands.train import train
from seglab.runtime.errors import UserError

from tests.helpers import PRESETS, QUICK, RECORD_VALIDATION, TINY, assert_miou_is_recomputed, make_cfg
from tests.helpers.probes import ResumeProbe, momentum_buffers


@pytest.mark.parametrize("preset", PRESETS)
def test_fast_dev_run_of_each_preset(preset, tmp_path):
    metrics = train(make_cfg(tmp_path, f"model={preset}", "model/backbone=resnet18", "debug=fdr", "data.dataset.image_size=[32,32]", RECORD_VALIDATION))
    assert_miou_is_recomputed(metrics)
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "csv").exists()  # "no checkpoints or loggers"


def test_debug_limit_runs_on_a_split_of_one_validation_batch(tmp_path):
    quick = [o for o in QUICK if not o.startswith("trainer.max_epochs")]  # the preset's own 2 epochs
    metrics = train(make_cfg(tmp_path, *quick, "debug=limit", RECORD_VALIDATION))  # 0.2 of one batch was an error (fractions)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 4  # 2 epochs of 2 batches
    assert_miou_is_recomputed(metrics)


def test_training_without_validation_saves_last_ckpt_and_writes_the_training_metrics(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="seglab"):
        metrics = train(make_cfg(tmp_path, *QUICK, "trainer.max_epochs=2", "+trainer.limit_val_batches=0"))
    assert f"Run finished: {tmp_path}\n  last checkpoint  checkpoints/last.ckpt\n  metrics          metrics.json\n" in caplog.text
    assert "Epoch 2/2 · step 4/4 · done · train/loss_epoch " in caplog.text  # the epoch's line, no validation
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 4
    assert not (tmp_path / "checkpoints" / "best.ckpt").exists()  # nothing to choose it by
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written == pytest.approx(metrics) and "train/loss_epoch" in written
    assert not [name for name in written if name.startswith("val/")]


def test_last_ckpt_is_written_after_every_epoch_even_one_that_is_not_the_best(tmp_path):
    best_first = ["callbacks.model_checkpoint.monitor=epoch", "callbacks.model_checkpoint.mode=min"]
    train(make_cfg(tmp_path, *QUICK, "trainer.max_epochs=2", *best_first))  # epoch 1 does not beat epoch 0
    assert load_checkpoint(tmp_path / "checkpoints" / "best.ckpt")["global_step"] == 2
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == 4  # Lightning 2.6 alone: 2


def test_validation_less_often_than_the_run_is_long_validates_the_final_weights(tmp_path):
    metrics = train(make_cfg(tmp_path, *QUICK, "trainer.max_epochs=2", "trainer.check_val_every_n_epoch=3"))
    last = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert last["global_step"] == 4 and last["epoch"] == 1  # written at each epoch end, with no validation
    assert json.loads((tmp_path / "metrics.json").read_text())["val/mIoU"] == pytest.approx(metrics["val/mIoU"])


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
        tmp_path, *TINY, f"ckpt_path={last}", f"trainer.max_epochs={epochs_done + 1}", "+callbacks.probe._target_=tests.helpers.probes.ResumeProbe"
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
    cfg = make_cfg(tmp_path, *QUICK, "data.dataset.lengths={train: 3, val: 4, test: 4}", "trainer.max_epochs=2", RECORD_VALIDATION)
    assert cfg.data.batch_size == 8
    metrics = train(cfg)
    rows = list(csv.DictReader((tmp_path / "csv" / "metrics.csv").open()))
    assert [row["step"] for row in rows if row["train/loss_step"]] == ["0", "1"]  # one step in each epoch
    assert_miou_is_recomputed(metrics)


def test_no_training_batch_at_all_is_one_message(tmp_path):
    with pytest.raises(UserError, match=r"^the run has no training step \(trainer.limit_train_batches leaves no batch "
                                        r"of the training split\), so .*; raise trainer.limit_train_batches or leave it out$"):
        train(make_cfg(tmp_path, *QUICK, "+trainer.limit_train_batches=0"))
