"""Faults during training: preemption signals save a checkpoint, a non-finite loss stops (or is skipped) loudly, a
GPU out-of-memory error says which settings to lower."""

from __future__ import annotations

import csv
import signal

import pytest

from seglab.checkpointing.io import load_checkpoint
from seglab.checkpointing.preemption import Preempted
from seglab.commands.train import train
from seglab.runtime.errors import UserError

from tests.helpers import QUICK, make_cfg

# QUICK with 4 steps per epoch and last.ckpt written after every step.
FAULTY = [*QUICK, "data.dataset.lengths={train: 32, val: 8, test: 8}", "callbacks.model_checkpoint.every_n_train_steps=1"]


def _probe(name: str, **args) -> list[str]:
    return [f"+callbacks.{name}._target_=tests.helpers.probes.{name}"] + [f"+callbacks.{name}.{k}={v}" for k, v in args.items()]


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_preemption_signal_saves_a_checkpoint_and_stops(name, tmp_path):
    handler_before = signal.getsignal(signal.SIGTERM)
    cfg = make_cfg(tmp_path, *FAULTY, "callbacks.model_checkpoint.every_n_train_steps=null", *_probe("SendSignal", signal=name, step=2))
    with pytest.raises(Preempted) as stopped:
        train(cfg)

    assert stopped.value.code == 128 + signal.Signals[name]  # the status of a process the signal killed
    saved = load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 2 and saved["epoch"] == 0  # mid-epoch, where the signal arrived
    assert not (tmp_path / "metrics.json").exists()  # the run did not go on to the end
    assert signal.getsignal(signal.SIGTERM) == handler_before


def test_nan_loss_stops_with_the_step_and_the_last_good_checkpoint(tmp_path):
    cfg = make_cfg(tmp_path, *FAULTY, "loss._target_=tests.helpers.probes.NaNLoss", "+loss.nan_calls=[3]")
    with pytest.raises(UserError) as stopped:
        train(cfg)

    message = str(stopped.value)
    assert "the training loss is nan at global step 2 (epoch 0, batch 2)" in message
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"Last good checkpoint: {last} (resume with ckpt_path={last})" in message
    assert load_checkpoint(last)["global_step"] == 2
    assert "trainer.skip_nonfinite=true" in message


def test_skip_nonfinite_skips_the_batches_and_counts_them(tmp_path, caplog):
    cfg = make_cfg(
        tmp_path, *FAULTY, "loss._target_=tests.helpers.probes.NaNLoss", "+loss.nan_calls=[2,3]", "trainer.skip_nonfinite=true"
    )
    metrics = train(cfg)

    assert metrics["val/mIoU"] == metrics["val/mIoU"]  # the weights stayed finite
    assert "Skipped the batch at global step 1 (epoch 0, batch 1)" in caplog.text
    assert "(2 skipped so far)" in caplog.text
    (metrics_csv,) = tmp_path.glob("csv/**/metrics.csv")
    rows = list(csv.DictReader(metrics_csv.open()))
    counts = [float(row["train/skipped_batches"]) for row in rows if row.get("train/skipped_batches")]
    assert sorted(set(counts)) == [1.0, 2.0]
    assert load_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["callbacks"]["NonFiniteLossGuard"] == {"skipped": 2}


def test_gpu_out_of_memory_names_the_settings_to_lower(tmp_path):
    cfg = make_cfg(tmp_path, *FAULTY, *_probe("RaiseOutOfMemory"))
    with pytest.raises(UserError) as stopped:
        train(cfg)

    message = str(stopped.value)
    assert message.startswith("the GPU ran out of memory (CUDA out of memory. Tried to allocate 2.00 GiB")
    assert "data.batch_size (now 8)" in message and "data.crop_size (now [64, 64])" in message
    assert "trainer.accumulate_grad_batches" in message and "trainer.precision" in message
