"""Where a command writes is checked before work starts, with one message naming the option, the path and the reason;
a disk that fills during a run stops it naming the file and the last good checkpoint, which stays intact."""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from collections import namedtuple
from pathlib import Path

import pytest
import torch

from seglab.checkpointing.io import TEMPORARY_SUFFIX, load_checkpoint
from seglab.commands.evaluate import evaluate
from seglab.commands.export import export_model
from seglab.commands.predict import predict
from seglab.commands.report import model_report
from seglab.commands.train import train
from seglab.config.builders import build_datamodule, build_model
from seglab.runtime.errors import UserError
from seglab.runtime.write_targets import check_writable_dir, checkpoint_size

from tests.helpers import QUICK, TINY, assert_one_line_error, make_cfg, run_in_process

RUN_DIR_FIX = "choose a writable folder with hydra.run.dir=<dir> (or SEGLAB_OUTPUT_DIR=<dir> for every run)"
# Read-only as root (a read-only mount) or not (chmod): the reasons the operating system gives.
NOT_WRITABLE = r"is not writable \((read-only file system|permission denied)\)"


def _mount_tmpfs(folder: Path, options: str) -> bool:
    """Mount a tmpfs on ``folder`` (root only, where the machine permits it)."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True).returncode == 0


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nothing can be written in: chmod 555, or for root (whom chmod does not stop) a read-only tmpfs."""
    folder = tmp_path / "read-only"
    if os.geteuid() != 0:
        folder.mkdir()
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if not _mount_tmpfs(folder, "ro,size=64k"):
        pytest.skip("root without permission to mount a read-only file system: no folder is read-only to this user")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(megabytes)``: a folder on a file system of that size (a tmpfs, where the machine permits it)."""
    mounted = []

    def make(megabytes: int) -> Path:
        folder = tmp_path / f"disk-{megabytes}m"
        if not _mount_tmpfs(folder, f"size={megabytes}m"):
            pytest.skip("mounting a small tmpfs is not permitted here")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_missing_folder_is_created_and_one_that_cannot_be_is_refused_with_the_reason(tmp_path, read_only_dir):
    fix = "choose another with output_dir=<dir>"
    assert check_writable_dir(tmp_path / "a" / "b", "output_dir", fix).is_dir()
    assert check_writable_dir(tmp_path / "later" / "c", "output_dir", fix, create=False) == tmp_path / "later" / "c"
    assert not (tmp_path / "later").exists()  # checked where it will be, made when the first file is written
    (tmp_path / "file").touch()
    with pytest.raises(UserError, match=f"^output_dir={tmp_path / 'file'} is a file, not a folder; {fix}$"):
        check_writable_dir(tmp_path / "file", "output_dir", fix)
    with pytest.raises(UserError, match=f"^output_dir={tmp_path / 'file' / 'x'} cannot be created: {tmp_path / 'file'} "
                                        f"is a file, not a folder; {fix}$"):
        check_writable_dir(tmp_path / "file" / "x", "output_dir", fix)
    for create in (True, False):
        with pytest.raises(UserError, match=f"^output_dir={read_only_dir / 'out'} {NOT_WRITABLE}; {fix}$"):
            check_writable_dir(read_only_dir / "out", "output_dir", fix, create=create)


@pytest.mark.parametrize(
    ("where", "key", "fix"),
    [("run", "paths.output_dir", RUN_DIR_FIX),
     ("checkpoints", "callbacks.model_checkpoint.dirpath", "choose another with callbacks.model_checkpoint.dirpath=<dir>")],
)
def test_training_refuses_a_run_or_checkpoint_folder_it_cannot_write_before_reading_data(
    tmp_path, read_only_dir, monkeypatch, where, key, fix
):
    monkeypatch.setattr("seglab.commands.train.preflight", lambda cfg: pytest.fail("the data was read before the check"))
    overrides = [f"callbacks.model_checkpoint.dirpath={read_only_dir / where}"] if where == "checkpoints" else []
    run_dir = read_only_dir / where if where == "run" else tmp_path / "run"
    with pytest.raises(UserError, match=f"^{key}={read_only_dir / where} {NOT_WRITABLE}; {re.escape(fix)}$"):
        train(make_cfg(run_dir, *TINY, *overrides))


def _refuses_before_reading_the_checkpoint(monkeypatch, module: str) -> None:
    monkeypatch.setattr(f"seglab.commands.{module}.training_config", lambda *a, **k: pytest.fail("the checkpoint was read first"))


def test_predict_refuses_an_output_dir_that_is_a_file_before_loading_the_model(tmp_path, monkeypatch):
    _refuses_before_reading_the_checkpoint(monkeypatch, "predict")
    (tmp_path / "photo.png").touch()
    (tmp_path / "out").touch()
    cfg = make_cfg(tmp_path, "ckpt_path=x.ckpt", f"input={tmp_path / 'photo.png'}", f"output_dir={tmp_path / 'out'}",
                   config_name="predict")
    with pytest.raises(UserError, match=f"^output_dir={tmp_path / 'out'} is a file, not a folder; choose another with "
                                        "output_dir=<dir>$"):
        predict(cfg)


@pytest.mark.parametrize("command", ["eval", "export", "report"])
def test_commands_refuse_an_output_folder_they_cannot_write_before_loading_anything(tmp_path, read_only_dir,
                                                                                    monkeypatch, command):
    target = read_only_dir / "out"
    if command == "eval":
        _refuses_before_reading_the_checkpoint(monkeypatch, "evaluate")
        overrides, key, run = ["ckpt_path=x.ckpt", "export.format=png", f"export.dir={target}"], "export.dir", evaluate
    elif command == "export":
        _refuses_before_reading_the_checkpoint(monkeypatch, "export")
        overrides, key, run = ["ckpt_path=x.ckpt", f"output={target / 'model.onnx'}"], "output", export_model
    else:
        monkeypatch.setattr("seglab.commands.report.instantiate_part", lambda *a: pytest.fail("the model was built first"))
        overrides, key, run = [f"erf_png={target / 'erf.png'}"], "erf_png", model_report
    with pytest.raises(UserError, match=f"^{key}={target} {NOT_WRITABLE}; choose another"):
        run(make_cfg(tmp_path, *overrides, config_name=command))


@pytest.mark.parametrize("disk", ["reported-small", "tmpfs"])
def test_a_disk_without_room_for_one_checkpoint_is_refused_before_training(tmp_path, small_disk, monkeypatch, disk):
    if disk == "tmpfs":
        run_dir = small_disk(2) / "run"
    else:  # the disk as the operating system reports it: 1 MB free
        run_dir = tmp_path / "run"
        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr("seglab.runtime.write_targets.shutil.disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    monkeypatch.setattr("seglab.commands.train.build_trainer", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(UserError) as refused:
        train(make_cfg(run_dir, *QUICK))
    key = f"callbacks.model_checkpoint.dirpath={run_dir / 'checkpoints'}"
    assert str(refused.value).startswith(f"{key}: its disk has ")
    assert " MB free, but a checkpoint of this model takes about " in str(refused.value)
    assert str(refused.value).endswith("MB; free space there or choose another folder with "
                                       "callbacks.model_checkpoint.dirpath=<dir>")


def test_the_checkpoint_size_estimate_covers_a_real_checkpoint(trained_run, tmp_path):
    run_dir, _ = trained_run
    cfg = make_cfg(tmp_path, *TINY)
    estimate = checkpoint_size(build_model(cfg, build_datamodule(cfg)))
    real = (run_dir / "checkpoints" / "last.ckpt").stat().st_size  # SGD with momentum: weights + one moment
    assert real <= estimate <= 2 * real


# 4 steps per epoch, last.ckpt after every step.
EVERY_STEP = [*QUICK, "data.dataset.lengths={train: 32, val: 8, test: 8}", "callbacks.model_checkpoint.every_n_train_steps=1"]


@pytest.mark.parametrize("disk", ["save-fails", "tmpfs"])
def test_a_disk_that_fills_during_the_run_stops_it_naming_the_file_and_the_last_good_checkpoint(
    tmp_path, small_disk, monkeypatch, disk
):
    if disk == "tmpfs":  # another program fills the disk at step 3, before its checkpoint is saved
        run_dir = small_disk(96) / "run"
        overrides = ["+callbacks.fill._target_=tests.helpers.probes.FillDisk", "+callbacks.fill.step=3",
                     f"+callbacks.fill.path={run_dir.parent / 'filler'}"]
    else:  # the operating system refuses the third save
        run_dir, overrides, saves = tmp_path / "run", [], []
        real_save = torch.save

        def save(obj, file, *args, **kwargs):
            saves.append(file)
            if len(saves) == 3:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_save(obj, file, *args, **kwargs)

        monkeypatch.setattr("seglab.checkpointing.io.torch.save", save)
    with pytest.raises(UserError) as stopped:
        train(make_cfg(run_dir, *EVERY_STEP, *overrides))
    last = run_dir / "checkpoints" / "last.ckpt"
    assert str(stopped.value) == (
        f"could not write {last} (no space left on device); last good checkpoint: {last} (resume with "
        f"ckpt_path={last}). Free space on that disk or choose another folder, then go on"
    )
    assert load_checkpoint(last)["global_step"] == 2  # intact: the save of step 3 left it as it was
    assert not list(last.parent.glob(f"*{TEMPORARY_SUFFIX}"))


def test_the_command_line_refuses_a_read_only_run_dir_before_hydra_writes_into_it(read_only_dir):
    result = run_in_process("train.py", f"hydra.run.dir={read_only_dir / 'run'}")
    assert_one_line_error(result, f"error: hydra.run.dir={read_only_dir / 'run'} is not writable (")
