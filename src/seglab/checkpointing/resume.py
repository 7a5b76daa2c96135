"""Which checkpoint ``ckpt_path`` resumes from: a ``.ckpt`` file, a run directory, or ``last``.

- ``ckpt_path=<file>.ckpt``: that checkpoint.
- ``ckpt_path=<run dir>``: ``<run dir>/checkpoints/last.ckpt`` (a ``checkpoints/`` folder itself works too), or
  a newer ``last-v<n>.ckpt`` beside it (see :func:`newest_last`).
- ``ckpt_path=last``: this run's own ``checkpoints/last.ckpt`` when it has one (a run started again in the same
  directory, ``hydra.run.dir=<run dir>``); otherwise the most recently written ``checkpoints/last.ckpt`` of the
  single runs of the same task, ``<paths.log_dir>/<task_name>/runs/*/`` (multirun jobs are not searched: give
  their run directory).

The resumed run writes into a new run directory (see :class:`seglab.checkpointing.model_checkpoint.ModelCheckpoint` for how the best
checkpoint carries over), or into the same one with ``hydra.run.dir=<run dir>`` (the command a stopped run prints;
see :mod:`seglab.runtime.run_dir`). The checkpoint is read safely (:mod:`seglab.checkpointing.io`) and must hold the run's
model (preset, backbone) trained on the data's classes, both checked before any data is loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from seglab.checkpointing.config_snapshot import CHECKPOINT_KEY
from seglab.checkpointing.io import load_checkpoint
from seglab.config.preflight import check_checkpoint_fits
from seglab.runtime.errors import UserError
from seglab.tracking.run_info import config_choices

log = logging.getLogger(__name__)

LAST = "last"
LAST_FILE = Path("checkpoints") / "last.ckpt"


def resume_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint ``cfg.ckpt_path`` names (``None``: start from scratch), checked against ``cfg``."""
    value = cfg.get("ckpt_path")
    if value is None:
        return None
    path = find_checkpoint(str(value), Path(cfg.paths.output_dir), Path(cfg.paths.log_dir) / cfg.task_name / "runs")
    checkpoint = load_checkpoint(path, trusted=bool(cfg.get("trusted")), mmap=True)
    if CHECKPOINT_KEY in checkpoint:
        check_checkpoint_fits(checkpoint[CHECKPOINT_KEY], cfg, config_choices(), path)
    log.info("Resuming from %s (epoch %s, step %s)", path, checkpoint.get("epoch"), checkpoint.get("global_step"))
    return path


def find_checkpoint(value: str, run_dir: Path, runs_dir: Path) -> Path:
    """The file ``ckpt_path=value`` names; ``run_dir`` is this run's directory, ``runs_dir`` where ``last`` looks."""
    if value == LAST:
        own = newest_last(run_dir / LAST_FILE.parent)
        if own is not None:
            return own
        found = [path for path in runs_dir.glob(f"*/{LAST_FILE}") if path.is_file()]
        if not found:
            raise UserError(
                f"ckpt_path=last: no {LAST_FILE} in this run's directory nor under {runs_dir}/*/; give the run "
                "directory or the .ckpt file to resume from (ckpt_path=<run dir>)"
            )
        return max(found, key=lambda path: path.stat().st_mtime)
    path = Path(value).expanduser()
    if path.is_dir():
        found = newest_last(path / LAST_FILE.parent) or newest_last(path)
        if found is None:
            raise UserError(
                f"ckpt_path={value} is a directory without {LAST_FILE}; give a run directory of train.py or a .ckpt file"
            )
        return found
    if not path.is_file():
        raise UserError(f"ckpt_path={value} does not exist; give a .ckpt file, a run directory or last")
    return path


def newest_last(folder: Path) -> Path | None:
    """The newest of ``last.ckpt`` and ``last-v<n>.ckpt`` in ``folder`` (Lightning's name for a last checkpoint
    written beside an earlier run's, which older versions left when a run directory was reused)."""
    found = [path for path in (folder / LAST_FILE.name, *folder.glob("last-v*.ckpt")) if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime) if found else None
