"""Reading and writing checkpoint files: loads that never run code from the file, saves that are never half-written.

Every checkpoint seglab reads goes through :func:`load_checkpoint`: eval.py, predict.py and the export (through
:mod:`seglab.checkpointing.restore`), and Lightning's own loading when a run resumes or validates its best checkpoint (through
:class:`SafeCheckpointIO`, which every trainer gets). A checkpoint is a pickle, and a pickle can name any function
(``os.system``, ...) to be called while it loads; :func:`load_checkpoint` unpickles with ``weights_only=True``,
which builds only tensors, plain containers and numbers, plus the types in :data:`SAFE_GLOBALS`. A file that needs
anything else is refused before anything in it runs, unless the user vouches for it with ``trusted=true``.

Saves write a temporary file next to the checkpoint, flush it to the disk and rename it over the checkpoint: a kill
(or a full disk) at any moment leaves the previous checkpoint or the new one, never part of one; a save that fails
stops the run with a message naming the file and the last good checkpoint. (Lightning's own saving stages the
file in the system's temporary folder and moves it, which turns into a copy, not atomic, when that folder is on
another file system, as it often is on clusters.)
"""

from __future__ import annotations

import os
import pickle
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from seglab.runtime.errors import UserError
from seglab.runtime.write_targets import os_error_in, write_failure

# Types beyond torch's weights-only set (tensors, dtypes, plain containers, numbers) that the platform's checkpoints
# may hold. Its parts store nothing else (the config snapshot is kept as plain containers for that reason); a part
# that starts storing an object of its own type must list the type here, or its checkpoints will be refused.
SAFE_GLOBALS: list[Any] = []

TEMPORARY_SUFFIX = ".partial"


def load_checkpoint(path: str | Path, trusted: bool = False, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """The contents of the checkpoint file ``path``, unpickled without running code from it.

    Args:
        path: the checkpoint file.
        trusted: load whatever the file holds (``torch.load(weights_only=False)``): this can run code from it.
        map_location: where tensors go (``torch.load``'s argument).
        mmap: map the file instead of reading it (cheap when only part of it is used).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"ckpt_path={path} does not exist; give the path of a .ckpt file from a run's checkpoints/")
    kind = checkpoint_format(path)
    if kind not in ("zip", "pickle"):
        raise UserError(f"{path} {kind}; give a .ckpt file written by train.py (e.g. a run's checkpoints/last.ckpt)")
    mmap = mmap and kind == "zip"  # torch maps only its zip format; older pickle files are read whole
    try:
        if trusted:
            return torch.load(path, map_location=map_location, weights_only=False, mmap=mmap)
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as err:
        foreign = _foreign_objects(path, kind, err)
        if not foreign:
            raise UserError(f"{path} is truncated or damaged: {_DAMAGED} ({_reason(err)})") from None
        raise UserError(
            f"refusing to load {path}: it holds objects of {', '.join(foreign)}, not only tensors and plain values, "
            "and loading such objects can run code from the file. If you trust where the file comes from, load it "
            "anyway with trusted=true"
        ) from None
    except (RuntimeError, EOFError, OSError, KeyError, ValueError) as err:  # cut short or corrupted on the way
        raise UserError(f"{path} is truncated or damaged: {_DAMAGED} ({_reason(err)})") from None


_DAMAGED = "its contents end early or do not decode; use another checkpoint (e.g. the run's best.ckpt or last.ckpt)"
# The first bytes of the two formats torch.save writes: a zip archive (since torch 1.6) and a plain pickle.
ZIP_MAGIC, PICKLE_MAGIC = b"PK\x03\x04", b"\x80"


def _reason(err: Exception) -> str:
    """The loader's own first sentence, without its advice (which is about other problems)."""
    first = str(err).splitlines()[0].split(". ")[0] if str(err) else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def checkpoint_format(path: Path) -> str:
    """``zip`` or ``pickle`` (the formats of ``torch.save``), else what is wrong with the file, as a phrase."""
    size = path.stat().st_size
    with open(path, "rb") as file:
        head = file.read(64)
    if size == 0:
        return "is empty (0 bytes): the save that wrote it did not finish, or something else created the file"
    if head.startswith(ZIP_MAGIC):
        if not zipfile.is_zipfile(path):
            return f"is truncated ({size} bytes): the end of the checkpoint is missing, as when a copy or save stops early"
        return "zip"
    if head.startswith(PICKLE_MAGIC):
        return "pickle"
    text = head.decode("utf-8", errors="replace")
    if not all(char.isprintable() or char.isspace() for char in text):
        return f"is not a checkpoint: its {size} bytes are neither of the formats torch.save writes"
    if text.startswith("version https://git-lfs"):
        return "is a Git LFS pointer, not the checkpoint itself (git lfs pull fetches it)"
    return f"is not a checkpoint but text (it starts with {text.splitlines()[0][:60]!r})"


def _foreign_objects(path: Path, kind: str, err: Exception) -> list[str]:
    """The globals the file names that the weights-only loader refused, found without unpickling it (none: the
    file is damaged rather than foreign)."""
    if kind == "pickle":  # torch lists the globals of zip checkpoints only; the loader's message names the first
        return re.findall(r"GLOBAL ([\w.]+)", str(err))[:1]
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:
        return []
    return [name for name in names if name not in {_qualified(t) for t in SAFE_GLOBALS}]


def _qualified(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def save_checkpoint_atomically(checkpoint: Any, path: str | Path) -> None:
    """``torch.save(checkpoint, path)`` through a temporary file in the same folder, flushed to disk, then renamed
    over ``path``. The temporary file is removed if saving fails, and leftovers of saves killed earlier once a save
    of the same checkpoint succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")
    try:
        with open(temporary, "xb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)  # make the rename itself durable
    for leftover in path.parent.glob(f".{path.name}.*{TEMPORARY_SUFFIX}"):
        leftover.unlink(missing_ok=True)


def _fsync_directory(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open folders
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint plugin with atomic saves and safe loads (see the module).

    Args:
        trusted: load checkpoints whatever they hold (the ``trusted`` option).
    """

    def __init__(self, trusted: bool = False) -> None:
        self.trusted = trusted

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        try:
            save_checkpoint_atomically(checkpoint, path)
        except Exception as err:  # a full disk, ...: the previous checkpoint of that name is intact
            if (failure := os_error_in(err)) is None:
                raise
            raise write_failure(path, failure, Path(path).parent) from err

    def load_checkpoint(
        self, path: str | Path, map_location: Callable | Any = "cpu", weights_only: bool | None = None
    ) -> dict[str, Any]:
        # Lightning's weights_only argument is not used: whether to trust the file is the user's trusted option.
        return load_checkpoint(path, trusted=self.trusted, map_location=map_location)
