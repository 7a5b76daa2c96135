"""Where a command writes is checked before work starts, and a disk that fills during a run stops it clearly.

- :func:`check_writable_dir`: a folder that exists or can be created, and where a file can be created (the run
  directory, ``checkpoints/``, predict.py's ``output_dir``, eval.py's ``export.dir``, the export's folder);
  otherwise one message naming the option, the path, the reason (a read-only file system, no permission, a file
  in the folder's place) and the option that changes it.
- :func:`check_room`: enough free space on the folder's disk for what the command writes first (a checkpoint of the
  model: :func:`checkpoint_size`).
- :class:`RunDirectoryCheck`: the same check of Hydra's run (or sweep) directory, before Hydra writes its
  ``.hydra/`` files and log into it.
- :func:`explain_write_failures` and :func:`write_failure`: a write that fails on the way (a full disk, a quota,
  a file system that turned read-only) becomes one message naming the file and the last good checkpoint, which
  atomic saves (:mod:`seglab.checkpointing.io`) leave intact.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from seglab.runtime.errors import UserError, exit_with_message

if TYPE_CHECKING:  # torch stays out of the Hydra callback's import (train.py --help)
    from torch import nn

# Errors that only writing raises: a full disk, a quota, a file too large for the file system, a read-only one.
WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS)
RUN_DIR_FIX = "choose a writable folder with hydra.run.dir=<dir> (or SEGLAB_OUTPUT_DIR=<dir> for every run)"


def reason(err: OSError) -> str:
    """``read-only file system``, ``permission denied``, ...: what the operating system said, in lower case."""
    text = os.strerror(err.errno) if err.errno else str(err)
    return text[:1].lower() + text[1:]


def check_writable_dir(path: str | Path, key: str, fix: str, create: bool = True) -> Path:
    """Make sure files can be written in the folder ``path``, created if missing; return it.

    Args:
        path: the folder.
        key: the option it comes from, for the message (``output_dir``).
        fix: how to choose another folder (``choose another with output_dir=<dir>``).
        create: create the folder now; otherwise check the nearest folder above it that exists, where it will be.
    """
    path = Path(path).expanduser()
    existing = nearest_folder(path)
    if not existing.is_dir():
        where = "" if existing == path else f" cannot be created: {existing}"
        raise UserError(f"{key}={path}{where} is a file, not a folder; {fix}")
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
            existing = path
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".seglab-write-check-"):
            pass
    except OSError as err:
        raise UserError(f"{key}={path} is not writable ({reason(err)}); {fix}") from None
    return path


def nearest_folder(path: str | Path) -> Path:
    """``path`` or, if it does not exist yet, the nearest folder above it that does (whose disk it will be on)."""
    path = Path(path).expanduser()
    return next(folder for folder in (path, *path.parents) if folder.exists())


def state_size(model: nn.Module) -> int:
    """The bytes of ``model``'s state: its weights and buffers (about the size of an exported model)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def checkpoint_size(model: nn.Module) -> int:
    """About the bytes of a checkpoint of ``model``: its state plus two optimizer moments per trainable weight
    (Adam's; SGD's momentum is one, so this errs on the large side)."""
    moments = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    return state_size(model) + 2 * moments


def check_room(path: str | Path, needed: int, key: str, what: str, fix: str) -> None:
    """Refuse a folder whose disk has less than ``needed`` bytes free (``what`` the bytes are for, for the message)."""
    free = shutil.disk_usage(nearest_folder(path)).free
    if free < needed:
        raise UserError(
            f"{key}={path}: its disk has {_megabytes(free)} free, but {what} takes about {_megabytes(needed)}; free "
            f"space there or {fix}"
        )


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


CHECKPOINT_DIR = "callbacks.model_checkpoint.dirpath"


def check_run_dirs(cfg: DictConfig) -> None:
    """The training run's directory (created if missing) and checkpoint folder (checked where it will be) are
    writable."""
    check_writable_dir(cfg.paths.output_dir, "paths.output_dir", RUN_DIR_FIX)
    if (folder := OmegaConf.select(cfg, CHECKPOINT_DIR)) is not None:  # created by the first save
        check_writable_dir(folder, CHECKPOINT_DIR, f"choose another with {CHECKPOINT_DIR}=<dir>", create=False)


def check_checkpoint_room(cfg: DictConfig, model: nn.Module) -> None:
    """The checkpoint folder's disk has room for a checkpoint of ``model``."""
    if (folder := OmegaConf.select(cfg, CHECKPOINT_DIR)) is not None:
        fix = f"choose another folder with {CHECKPOINT_DIR}=<dir>"
        check_room(folder, checkpoint_size(model), CHECKPOINT_DIR, "a checkpoint of this model", fix)


def last_good_checkpoint(folder: str | Path, also: str | Path | None = None) -> str:
    """The newest checkpoint in ``folder`` (or ``also``, e.g. the one the run resumed from), for messages."""
    candidates = [path for path in Path(folder).glob("*.ckpt") if path.is_file()]
    if also and Path(also).is_file():
        candidates.append(Path(also))
    newest = max(candidates, key=lambda path: path.stat().st_mtime, default=None)
    return f"{newest} (resume with ckpt_path={newest})" if newest else "none yet (no checkpoint was saved)"


def write_failure(path: str | Path, err: OSError, checkpoint_folder: str | Path | None) -> UserError:
    """The message of a write (of ``path``) that failed during a run."""
    last = f"; last good checkpoint: {last_good_checkpoint(checkpoint_folder)}" if checkpoint_folder else ""
    return UserError(f"could not write {path} ({reason(err)}){last}. Free space on that disk or choose another "
                     "folder, then go on")


def os_error_in(err: BaseException | None) -> OSError | None:
    """The :class:`OSError` that ``err`` is or arose from (torch's writer turns a failed write into a RuntimeError
    raised while handling it)."""
    while err is not None and not isinstance(err, OSError):
        err = err.__cause__ or err.__context__
    return err


@contextmanager
def explain_write_failures(folder: str | Path, checkpoint_folder: str | Path | None = None) -> Iterator[None]:
    """Turn a full disk (or quota, or a file system turned read-only) met inside into a :class:`UserError` naming
    the file (else the ``folder`` written into) and the last good checkpoint in ``checkpoint_folder``."""
    try:
        yield
    except UserError:
        raise  # already explained (a checkpoint save names its own file)
    except Exception as err:
        failure = os_error_in(err)
        if failure is None or failure.errno not in WRITE_ERRORS:
            raise
        raise write_failure(failure.filename or f"into {folder}", failure, checkpoint_folder) from err


class RunDirectoryCheck(Callback):
    """Hydra callback: refuse a run (or sweep) directory that cannot be written, before Hydra writes into it.

    Hydra turns what its callbacks raise into warnings, so the refusal prints its message and exits (status 2).
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check_or_exit(OmegaConf.select(config, "hydra.run.dir"), "hydra.run.dir", RUN_DIR_FIX)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        fix = "choose a writable folder with hydra.sweep.dir=<dir> (or SEGLAB_OUTPUT_DIR=<dir>)"
        _check_or_exit(OmegaConf.select(config, "hydra.sweep.dir"), "hydra.sweep.dir", fix)


def _check_or_exit(path: str, key: str, fix: str) -> None:
    try:
        check_writable_dir(path, key, fix)
    except UserError as err:
        exit_with_message(str(err), err)
