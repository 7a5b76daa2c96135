"""Resume is exact at every boundary: a run stopped by SIGKILL (inside a checkpoint save mid-epoch, during a
validation, right after an epoch, after the last epoch), Ctrl-C (once, twice) or SIGTERM, and resumed into the same
run directory with ckpt_path=last, =<run dir> or =<file>, ends with the weights, steps, metrics.json and logger
curves (CSV, TensorBoard, MLflow, W&B) of the uninterrupted run. Also: ckpt_path rules, a reused run directory, a
metrics.csv cut by a kill, the best checkpoint carried into a resumed run's directory."""

from __future__ import annotations

import csv
import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seglab.checkpointing.io import load_checkpoint
from seglab.checkpointing.model_checkpoint import ModelCheckpoint
from seglab.checkpointing.preemption import Preempted, ctrl_c_stops_at_once
from seglab.checkpointing.resume import find_checkpoint
from seglab.commands.train import train
from seglab.runtime.errors import UserError
from seglab.runtime.run_dir import check_run_dir
from seglab.tracking.csv import CSVLogger
from seglab.tracking.wandb_history import history_rows

from tests.helpers import REPO, make_cfg

# 32 images of 32x32 in batches of 8: 4 steps per epoch, 12 in all; last.ckpt after steps 2, 6, 10 and every epoch.
RUN = [
    "model/backbone=mobilenet_v2",
    "model.decoder.out_channels=32",
    "data.dataset.image_size=[32,32]",
    "data.dataset.lengths={train: 32, val: 8, test: 8}",
    "trainer.max_epochs=3",
    "trainer.accelerator=cpu",
    "trainer.deterministic=true",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "callbacks.model_checkpoint.every_n_train_steps=2",
    "~callbacks.validation_media",
    "seed=7",
]
KILLS = "logger=[csv,tensorboard,mlflow]"  # the loggers of the SIGKILL runs
SIGNALS = "logger=[csv,wandb]"  # those of the Ctrl-C / SIGTERM runs


def _interrupt(name: str, signal_name: str, at: str, times: int = 1) -> list[str]:
    probe = f"+callbacks.{name}"
    settings = {"_target_": "tests.helpers.probes.Interrupt", "signal": signal_name, "at": at, "times": times}
    return [f"{probe}.{key}={value}" for key, value in settings.items()]


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> Path:
    """paths.log_dir of every run here (the MLflow store is <logs>/mlruns), and a home for W&B's settings."""
    return tmp_path_factory.mktemp("logs")


# Not inherited: a sweep agent's run id, and the tracking URI that mlflow.set_tracking_uri leaves in the environment
# of a process (this one) that used MLflow before.
DROPPED = ("WANDB_RUN_ID", "MLFLOW_TRACKING_URI")


def _environment(logs: Path) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if name not in DROPPED}
    wandb_offline = {"HOME": str(logs / "home"), "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    return {**environment, "PYTHONWARNINGS": "ignore", **wandb_offline}


def _command(run_dir: Path, logs: Path, *overrides: str) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), *RUN, f"paths.log_dir={logs}", f"hydra.run.dir={run_dir}", *overrides]


def _run(command: list[str], logs: Path) -> subprocess.CompletedProcess:
    """Run like a user at a terminal would: Ctrl-C (SIGINT) reaches the process (a child of a background shell
    would ignore it)."""
    return subprocess.run(
        command, cwd=REPO, env=_environment(logs), capture_output=True, text=True, timeout=600,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _train(run_dir: Path, logs: Path, *overrides: str) -> subprocess.CompletedProcess:
    return _run(_command(run_dir, logs, *overrides), logs)


def _train_here(monkeypatch: pytest.MonkeyPatch, run_dir: Path, logs: Path, *overrides: str) -> dict[str, float]:
    """``train()`` in this process (no start-up to wait for), with the environment of :func:`_run`."""
    for name, value in _environment(logs).items():
        monkeypatch.setenv(name, value)
    for name in DROPPED:
        monkeypatch.delenv(name, raising=False)
    return train(make_cfg(run_dir, *RUN, f"paths.log_dir={logs}", *overrides))


@pytest.fixture(scope="module")
def uninterrupted_run(logs) -> Path:
    """The uninterrupted run, with every logger."""
    run_dir = logs / "train" / "runs" / "reference"
    with pytest.MonkeyPatch.context() as monkeypatch:
        _train_here(monkeypatch, run_dir, logs, "logger=[csv,tensorboard,mlflow,wandb]")
    return run_dir


def _step(run_dir: Path) -> int:
    return load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["global_step"]


def _csv_rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        return list(csv.DictReader(file))


def _tensorboard_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def _mlflow_curves(run_dir: Path, logs: Path) -> dict[str, list[tuple[int, float]]]:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{logs / 'mlruns' / 'mlflow.db'}")
    run_id = (run_dir / "mlflow" / "run_id").read_text().strip()
    metrics = client.get_run(run_id).data.metrics
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in metrics}


def _wandb_curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every value of every segment of the W&B run (what `wandb sync` uploads), by trainer/global_step."""
    curves: dict[str, list] = {}
    for segment in sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb")):
        for row in history_rows(segment):
            for key, value in row.items():
                if not key.startswith("_") and key != "trainer/global_step":
                    curves.setdefault(key, []).append((row["trainer/global_step"], value))
    return {key: sorted(values) for key, values in curves.items()}


def _assert_same_run(expected: Path, resumed: Path, logs: Path, loggers: tuple[str, ...]) -> None:
    final = load_checkpoint(resumed / "checkpoints" / "last.ckpt")
    reference = load_checkpoint(expected / "checkpoints" / "last.ckpt")
    assert final["global_step"] == reference["global_step"] == 12
    assert final["state_dict"].keys() == reference["state_dict"].keys()
    for name, tensor in reference["state_dict"].items():
        assert torch.equal(final["state_dict"][name], tensor), name
    assert json.loads((resumed / "metrics.json").read_text()) == json.loads((expected / "metrics.json").read_text())
    assert _csv_rows(resumed) == _csv_rows(expected)  # the same rows in the same order: no gap, no repeat
    if "tensorboard" in loggers:
        assert _tensorboard_curves(resumed) == _tensorboard_curves(expected)
    if "mlflow" in loggers:
        assert _mlflow_curves(resumed, logs) == _mlflow_curves(expected, logs)
    if "wandb" in loggers:
        assert _wandb_curves(resumed) == _wandb_curves(expected)


def _resumed_from(done: subprocess.CompletedProcess, path: Path, epoch: int, step: int) -> bool:
    return f"Resuming from {path} (epoch {epoch}, step {step})" in done.stdout + done.stderr


@pytest.mark.slow
def test_sigkill_at_every_boundary_resumes_into_the_same_run(uninterrupted_run, logs, tmp_path, caplog, monkeypatch):
    run_dir, marker = logs / "train" / "runs" / "killed", tmp_path / "saving"
    last = run_dir / "checkpoints" / "last.ckpt"

    # Killed while writing the checkpoint of step 6 (mid-epoch): the one of the end of epoch 0 stays intact.
    hang = [f"+callbacks.hang.{key}={value}" for key, value in
            {"_target_": "tests.helpers.probes.HangInSave", "step": 6, "marker": marker}.items()]
    killed = subprocess.Popen(_command(run_dir, logs, KILLS, *hang), cwd=REPO, env=_environment(logs),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not marker.exists():
        assert killed.poll() is None, f"the run ended before it was killed:\n{killed.stderr.read()[-3000:]}"
        assert time.monotonic() < deadline, "the run did not reach the checkpoint save it should be killed in"
        time.sleep(0.2)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert list(last.parent.glob(".last.ckpt.*.partial")), "the kill did not happen while a checkpoint was written"
    assert _step(run_dir) == 4

    # Resumed after that end-of-epoch checkpoint (ckpt_path=last), killed during the validation of epoch 1.
    done = _train(run_dir, logs, KILLS, "ckpt_path=last", *_interrupt("kill", "SIGKILL", "validation:1"))
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    assert _resumed_from(done, last, 0, 4) and _step(run_dir) == 6  # the step checkpoint before that validation

    # ckpt_path=<run dir>, killed right after epoch 1 (its checkpoint and metrics written, epoch 2 not started).
    done = _train(run_dir, logs, KILLS, f"ckpt_path={run_dir}", *_interrupt("kill", "SIGKILL", "epoch_end:1"))
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    assert _resumed_from(done, last, 1, 6) and _step(run_dir) == 8

    # ckpt_path=<file>, killed after the last epoch, before the final validation.
    done = _train(run_dir, logs, KILLS, f"ckpt_path={last}", *_interrupt("kill", "SIGKILL", "final_validation"))
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    assert _resumed_from(done, last, 1, 8) and _step(run_dir) == 12 and not (run_dir / "metrics.json").exists()

    with caplog.at_level(logging.INFO):  # only the final validation is left
        _train_here(monkeypatch, run_dir, logs, KILLS, "ckpt_path=last")
    assert f"Resuming from {last} (epoch 2, step 12)" in caplog.text
    assert not list(last.parent.glob("last-v*.ckpt")) and not list(last.parent.glob(".*.partial"))
    _assert_same_run(uninterrupted_run, run_dir, logs, ("csv", "tensorboard", "mlflow"))


@pytest.mark.slow
def test_ctrl_c_and_sigterm_save_stop_and_resume_into_the_same_run(uninterrupted_run, logs, monkeypatch):
    run_dir = logs / "train" / "runs" / "stopped"
    last = run_dir / "checkpoints" / "last.ckpt"

    # Ctrl-C after step 5: last.ckpt is saved at the end of the next batch, with the command that resumes; status 130.
    done = _train(run_dir, logs, SIGNALS, *_interrupt("kill", "SIGINT", "step:5"))
    assert done.returncode == 130, done.stderr[-3000:]
    assert _step(run_dir) == 6
    printed = (done.stdout + done.stderr).split("resume with:\n", 1)[1].splitlines()[0].strip()
    command = shlex.split(printed)
    assert command[0] == "python" and f"ckpt_path={run_dir}" in command and f"hydra.run.dir={run_dir}" in command
    shutil.copy(last, last.with_name("step6.ckpt"))  # resumed from again below

    # The printed command resumes. Ctrl-C twice after step 9: stops at once, without saving (status 130).
    done = _run([sys.executable, *command[1:], *_interrupt("again", "SIGINT", "step:9", times=2)], logs)
    assert done.returncode == 130, done.stderr[-3000:]
    assert _resumed_from(done, last, 1, 6) and "Ctrl-C again: stopped at once without saving" in done.stdout + done.stderr
    assert _step(run_dir) == 8  # the end of epoch 1, the last checkpoint before the second Ctrl-C

    # SIGTERM in the validation of the last epoch: that validation is finished, then last.ckpt saved; status 143.
    with pytest.raises(Preempted) as stopped:
        sigterm = _interrupt("kill", "SIGTERM", "validation:2")
        _train_here(monkeypatch, run_dir, logs, SIGNALS, f"ckpt_path={run_dir}", *sigterm)
    assert stopped.value.code == 128 + signal.SIGTERM
    assert _step(run_dir) == 12 and not (run_dir / "metrics.json").exists()

    # Resumed from the older file: steps 7-12, trained and logged already, are trained again and logged once.
    _train_here(monkeypatch, run_dir, logs, SIGNALS, f"ckpt_path={last.with_name('step6.ckpt')}")
    _assert_same_run(uninterrupted_run, run_dir, logs, ("csv", "wandb"))
    segments = list((run_dir / "wandb").glob("offline-run-*"))
    run_id = (run_dir / "wandb" / "run_id").read_text().strip()
    assert len(segments) == 4 and all(path.name.endswith(f"-{run_id}") for path in segments)  # one W&B run

    # The finished run's directory is not reused without ckpt_path, and nothing in it changes: Hydra is stopped
    # before it writes .hydra/ (train.py's Hydra app with an empty task, which spares the start-up of training).
    kept = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()}
    hydra_app = "import hydra, seglab.config.compose as c; hydra.main(c.CONFIG_DIR, 'train', version_base='1.3')(print)()"
    done = _run([sys.executable, "-c", hydra_app, *RUN, f"paths.log_dir={logs}", f"hydra.run.dir={run_dir}"], logs)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"error: hydra.run.dir={run_dir} holds an earlier run (checkpoints, resolved_config.yaml" in done.stderr
    assert f"resume it with ckpt_path={run_dir}, or give another hydra.run.dir" in done.stderr
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*") if path.is_file()} == kept


def test_ctrl_c_outside_training_stops_at_once_with_the_resume_command(tmp_path, caplog):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    # Python's own Ctrl-C handler, as in a terminal: a shell starts background jobs with SIGINT ignored, and an
    # ignored SIGINT is left ignored (tested below).
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(Preempted) as stopped, ctrl_c_stops_at_once(tmp_path):  # e.g. in the final validation
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        assert stopped.value.code == 130 and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with ctrl_c_stops_at_once(tmp_path):  # nohup / a background job: Ctrl-C cannot reach it, nothing to install
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, handler)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert f"Ctrl-C: stopped; the last checkpoint is {last}, resume with:" in caplog.text
    assert f"ckpt_path={tmp_path} hydra.run.dir={tmp_path}" in caplog.text


def test_a_reused_run_directory_is_only_resumed_from_its_own_checkpoints(tmp_path, monkeypatch):
    for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID", "SLURM_RESTART_COUNT"):
        monkeypatch.delenv(name, raising=False)
    run_dir, other = tmp_path / "run", tmp_path / "other" / "checkpoints" / "last.ckpt"
    check_run_dir(run_dir, None)  # a new directory
    (run_dir / ".hydra").mkdir(parents=True)
    check_run_dir(run_dir, None)  # only Hydra's files: a run that failed before training
    (run_dir / "resolved_config.yaml").write_text("seed: 1\n")
    with pytest.raises(UserError, match=r"holds an earlier run \(resolved_config.yaml\) without a checkpoint"):
        check_run_dir(run_dir, None)
    (run_dir / "checkpoints").mkdir()
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"")
    with pytest.raises(UserError, match=f"resume it with ckpt_path={run_dir}, or give another hydra.run.dir"):
        check_run_dir(run_dir, None)
    with pytest.raises(UserError, match=f"ckpt_path={other} is not one of its checkpoints"):
        check_run_dir(run_dir, other)
    check_run_dir(run_dir, run_dir / "checkpoints" / "last.ckpt")  # resuming it
    monkeypatch.setenv("LOCAL_RANK", "1")
    check_run_dir(run_dir, None)  # a DDP process started by rank 0 shares its directory
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    check_run_dir(run_dir, None)  # a requeued SLURM job resumes in its own directory (seglab.checkpointing.requeue)


def test_a_metrics_csv_cut_by_a_kill_is_repaired_and_continued(tmp_path, caplog):
    folder = tmp_path / "csv"
    folder.mkdir()
    rows = ["epoch,step,train/loss,val/mIoU", "0,0,1.5,", "0,1,1.4,", "0,1,,0.2", "1,2,1.3,", "1,3,1.2,", "1,4,1.1"]
    (folder / "metrics.csv").write_text("\n".join(rows))  # killed while writing the row of step 4
    logger = CSVLogger(tmp_path, name="csv", version="")
    logger.resume_at(3)  # the checkpoint of step 3: rows from step 3 on are trained and logged again
    logger.log_metrics({"train/loss": 1.25, "epoch": 1}, step=3)  # fewer keys than the file (Lightning: ValueError)

    assert "dropped 1 unfinished row(s)" in caplog.text
    with open(folder / "metrics.csv", newline="") as file:
        rows = list(csv.reader(file))
    assert rows == [["epoch", "step", "train/loss", "val/mIoU"], ["0", "0", "1.5", ""], ["0", "1", "1.4", ""],
                    ["0", "1", "", "0.2"], ["1", "2", "1.3", ""], ["1", "3", "1.25", ""]]

    (folder / "metrics.csv").write_text("epoch,step,train/loss,val/mIoU\n0,0,1.5,\n0,1,1.4")  # cut, not re-trained
    CSVLogger(tmp_path, name="csv", version="").log_metrics({"train/loss": 1.0, "epoch": 1}, step=2)
    with open(folder / "metrics.csv", newline="") as file:
        assert list(csv.reader(file))[1:] == [["0", "0", "1.5", ""], ["1", "2", "1.0", ""]]


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
    (older / "checkpoints" / "last-v1.ckpt").write_bytes(b"")  # an older version's reuse of the directory
    assert find_checkpoint(str(older), current, runs) == older / "checkpoints" / "last-v1.ckpt"  # the newer one
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
