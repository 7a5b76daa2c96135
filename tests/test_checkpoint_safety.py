"""Checkpoints are read without running code from them (unless trusted=true) and never left half-written; a file that
is empty, text, truncated or damaged says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seglab.checkpointing.io import load_checkpoint, save_checkpoint_atomically
from seglab.commands.evaluate import evaluate
from seglab.commands.train import train
from seglab.runtime.errors import UserError

from tests.helpers import make_cfg


class RunsCode:
    """Unpickling this runs Python code: it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.fixture
def malicious_checkpoint(tmp_path) -> tuple[Path, Path]:
    """A checkpoint that looks like any other but runs code when unpickled; and the file that code creates."""
    marker, path = tmp_path / "code-ran", tmp_path / "shared.ckpt"
    torch.save({"state_dict": {"net.weight": torch.zeros(2)}, "epoch": 3, "payload": RunsCode(marker)}, path)
    return path, marker


def test_malicious_checkpoint_is_refused_without_running_it(malicious_checkpoint):
    path, marker = malicious_checkpoint
    with pytest.raises(UserError) as refused:
        load_checkpoint(path)
    assert str(refused.value) == (
        f"refusing to load {path}: it holds objects of builtins.exec, not only tensors and plain values, and loading "
        "such objects can run code from the file. If you trust where the file comes from, load it anyway with "
        "trusted=true"
    )
    assert not marker.exists()


def test_trusted_loads_it_anyway(malicious_checkpoint):
    path, marker = malicious_checkpoint
    assert load_checkpoint(path, trusted=True)["epoch"] == 3
    assert marker.exists()  # the refusal above was no false alarm: loading it does run its code


@pytest.mark.parametrize(("entry", "config_name"), [(train, "train"), (evaluate, "eval")], ids=["resume", "eval"])
def test_entry_points_refuse_it(entry, config_name, malicious_checkpoint, tmp_path):
    path, marker = malicious_checkpoint
    with pytest.raises(UserError, match="refusing to load .*trusted=true"):
        entry(make_cfg(tmp_path / "run", f"ckpt_path={path}", config_name=config_name))
    assert not marker.exists()


class FailsHalfway:
    def __reduce__(self):
        raise OSError("No space left on device")


def test_failed_save_leaves_the_previous_checkpoint(tmp_path):
    path = tmp_path / "last.ckpt"
    save_checkpoint_atomically({"global_step": 4}, path)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint_atomically({"global_step": 6, "big": torch.zeros(1000), "bad": FailsHalfway()}, path)
    assert load_checkpoint(path) == {"global_step": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def _damaged(tmp_path: Path, name: str) -> Path:
    """A checkpoint file gone wrong in one of the ways files do."""
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"net.weight": torch.zeros(1000)}}, good)
    data = good.read_bytes()
    path = tmp_path / f"{name}.ckpt"
    contents = {
        "empty": b"",
        "text": b"epoch,step,loss\n0,1,2.5\n",
        "lfs-pointer": b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 133\n",
        "truncated": data[: len(data) // 2],
        "tail-cut": data[:-30],
        "damaged": data[:200] + b"x" * 60 + data[260:],
        "binary": bytes(range(256)) * 4,
    }[name]
    path.write_bytes(contents)
    return path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("empty", "is empty (0 bytes): the save that wrote it did not finish, or something else created the file"),
        ("text", "is not a checkpoint but text (it starts with 'epoch,step,loss'); give a .ckpt file written by"),
        ("lfs-pointer", "is a Git LFS pointer, not the checkpoint itself (git lfs pull fetches it); give a .ckpt"),
        ("truncated", "is truncated ("),
        ("tail-cut", "is truncated ("),
        ("damaged", "is truncated or damaged: its contents end early or do not decode"),
        ("binary", "is not a checkpoint: its 1024 bytes are neither of the formats torch.save writes"),
    ],
)
@pytest.mark.parametrize("mmap", [False, True], ids=["read", "mapped"])
def test_empty_text_truncated_or_damaged_files_say_so(tmp_path, name, message, mmap):
    path = _damaged(tmp_path, name)
    with pytest.raises(UserError) as refused:
        load_checkpoint(path, mmap=mmap)
    assert str(refused.value).startswith(f"{path} {message}")
    assert "_use_new_zipfile_serialization" not in str(refused.value) and "weights_only" not in str(refused.value)


def test_a_checkpoint_in_torchs_older_format_loads_even_when_mapped(tmp_path):
    path = tmp_path / "old.ckpt"
    torch.save({"epoch": 1}, path, _use_new_zipfile_serialization=False)
    assert load_checkpoint(path, mmap=True) == {"epoch": 1}


@pytest.mark.parametrize(("entry", "config_name"), [(train, "train"), (evaluate, "eval")], ids=["resume", "eval"])
def test_entry_points_name_an_empty_checkpoint(entry, config_name, tmp_path):
    path = _damaged(tmp_path, "empty")
    with pytest.raises(UserError, match=r"empty.ckpt is empty \(0 bytes\)"):
        entry(make_cfg(tmp_path / "run", f"ckpt_path={path}", config_name=config_name))
