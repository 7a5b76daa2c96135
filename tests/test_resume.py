"""Surviving kills: a run killed with SIGKILL (in the middle of a checkpoint save, mid-epoch) and resumed with
ckpt_path=last ends with exactly the weights and metrics of an uninterrupted run; ckpt_path rules; step checkpoints;
the best checkpoint carried into a resumed run's directory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seglab.callbacks import ModelCheckpoint
from seglab.checkpoint_io import load_checkpoint
from seglab.errors import UserError
from seglab.resume import find_checkpoint
from tests.conftest import REPO, run_script

# 48 images of 32x32 in batches of 8: 6 steps per epoch, 12 in all, last.ckpt every 2 steps.
RUN = [
    "model/backbone=resnet18",
    "model.decoder.out_channels=32",
    "data.dataset.image_size=[32,32]",
    "data.dataset.lengths={train: 48, val: 8, test: 8}",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "trainer.deterministic=true",
    "trainer.num_sanity_val_steps=0",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    "~callbacks.validation_media",
    "logger=csv",
    "seed=7",
]
KILLED_AT_STEP = 10  # epoch 1, batch 4: killed while writing that step's last.ckpt; the one of step 8 remains


def _start(run_dir: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *RUN, f"hydra.run.dir={run_dir}", *overrides],
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(marker: Path, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            pytest.fail(f"the run ended before it was killed:\n{process.stderr.read()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the run did not reach the checkpoint save it should be killed in")
        time.sleep(0.2)


@pytest.mark.slow
def test_run_killed_mid_epoch_resumes_to_the_same_weights_and_metrics(tmp_path):
    logs = tmp_path / "logs"
    killed_dir = logs / "train" / "runs" / "killed"
    marker = tmp_path / "saving"
    killed = _start(
        killed_dir,
        "+callbacks.hang._target_=tests.probes.HangInSave",
        f"+callbacks.hang.step={KILLED_AT_STEP}",
        f"+callbacks.hang.marker={marker}",
    )
    uninterrupted = _start(tmp_path / "uninterrupted")
    _wait_for(marker, killed)
    killed.send_signal(signal.SIGKILL)
    killed.wait()

    # The save in progress never replaced last.ckpt: the previous one (mid-epoch) is intact and loadable.
    checkpoints = killed_dir / "checkpoints"
    assert list(checkpoints.glob(".last.ckpt.*.partial")), "the kill did not happen while a checkpoint was written"
    previous = load_checkpoint(checkpoints / "last.ckpt")
    assert previous["global_step"] == KILLED_AT_STEP - 2 and previous["epoch"] == 1
    assert previous["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]["processed"] == 2  # mid-epoch

    resumed_dir = logs / "train" / "runs" / "resumed"
    resumed = run_script("train.py", *RUN, "ckpt_path=last", f"paths.log_dir={logs}", f"hydra.run.dir={resumed_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"Resuming from {checkpoints / 'last.ckpt'}" in resumed.stdout + resumed.stderr
    assert uninterrupted.wait(timeout=600) == 0, uninterrupted.stderr.read()[-3000:]

    expected = load_checkpoint(tmp_path / "uninterrupted" / "checkpoints" / "last.ckpt")
    final = load_checkpoint(resumed_dir / "checkpoints" / "last.ckpt")
    assert final["global_step"] == expected["global_step"] == 12
    assert final["state_dict"].keys() == expected["state_dict"].keys()
    for name, tensor in expected["state_dict"].items():
        assert torch.equal(final["state_dict"][name], tensor), name
    expected_metrics = json.loads((tmp_path / "uninterrupted" / "metrics.json").read_text())
    assert json.loads((resumed_dir / "metrics.json").read_text()) == expected_metrics


def test_ckpt_path_names_a_file_a_run_directory_or_the_newest_run(tmp_path):
    runs = tmp_path / "train" / "runs"
    older, newer, current = runs / "a", runs / "b", runs / "current"
    for run in (older, newer):
        (run / "checkpoints").mkdir(parents=True)
        (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    os.utime(older / "checkpoints" / "last.ckpt", (1, 1))

    assert find_checkpoint("last", current, runs) == newer / "checkpoints" / "last.ckpt"
    assert find_checkpoint(str(older), current, runs) == older / "checkpoints" / "last.ckpt"
    assert find_checkpoint(str(older / "checkpoints"), current, runs) == older / "checkpoints" / "last.ckpt"
    file = older / "checkpoints" / "last.ckpt"
    assert find_checkpoint(str(file), current, runs) == file
    (current / "checkpoints").mkdir(parents=True)
    (current / "checkpoints" / "last.ckpt").write_bytes(b"")  # a run started again in its own directory
    assert find_checkpoint("last", current, runs) == current / "checkpoints" / "last.ckpt"

    with pytest.raises(UserError, match="ckpt_path=last: no checkpoints/last.ckpt"):
        find_checkpoint("last", tmp_path / "x", tmp_path / "nowhere")
    with pytest.raises(UserError, match="is a directory without checkpoints/last.ckpt"):
        find_checkpoint(str(tmp_path), current, runs)
    with pytest.raises(UserError, match="does not exist"):
        find_checkpoint(str(tmp_path / "missing.ckpt"), current, runs)


def test_resumed_run_keeps_the_best_checkpoint_and_score_of_the_run_it_resumes(tmp_path):
    old_dir, new_dir = tmp_path / "old" / "checkpoints", tmp_path / "new" / "checkpoints"
    old_dir.mkdir(parents=True)
    (old_dir / "best.ckpt").write_bytes(b"weights of epoch 3")
    state = {
        "monitor": "val/mIoU",
        "best_model_score": torch.tensor(0.61),
        "best_model_path": str(old_dir / "best.ckpt"),
        "current_score": torch.tensor(0.55),
        "dirpath": str(old_dir),
        "best_k_models": {str(old_dir / "best.ckpt"): torch.tensor(0.61)},
        "kth_best_model_path": str(old_dir / "best.ckpt"),
        "kth_value": torch.tensor(0.61),
        "last_model_path": str(old_dir / "last.ckpt"),
    }
    callback = ModelCheckpoint(dirpath=str(new_dir), filename="best", monitor="val/mIoU", mode="max", save_last=True)
    callback.load_state_dict(state)

    assert callback.best_model_path == str(new_dir / "best.ckpt")
    assert (new_dir / "best.ckpt").read_bytes() == b"weights of epoch 3"
    assert callback.best_model_score == pytest.approx(0.61)  # Lightning alone would forget it
    assert (old_dir / "best.ckpt").exists()  # the old run is left as it was
