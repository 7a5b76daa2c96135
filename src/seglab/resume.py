"""Which checkpoint ``ckpt_path`` resumes from: a ``.ckpt`` file, a run directory, or ``last``.

- ``ckpt_path=<file>.ckpt``: that checkpoint.
- ``ckpt_path=<run dir>``: ``<run dir>/checkpoints/last.ckpt`` (a ``checkpoints/`` folder itself works too).
- ``ckpt_path=last``: this run's own ``checkpoints/last.ckpt`` when it has one (a run started again in the same
  directory, ``hydra.run.dir=<run dir>``); otherwise the most recently written ``checkpoints/last.ckpt`` of the
  single runs of the same task, ``<paths.log_dir>/<task_name>/runs/*/`` (multirun jobs are not searched: give
  their run directory).

The resumed run writes into its own run directory (see :class:`seglab.callbacks.ModelCheckpoint` for how the best
checkpoint carries over). The checkpoint is read safely (:mod:`seglab.checkpoint_io`) and must hold the run's model
(preset, backbone) trained on the data's classes, both checked before any data is loaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig

from seglab.callbacks.config_snapshot import CHECKPOINT_KEY
from seglab.checkpoint_io import load_checkpoint
from seglab.preflight import check_checkpoint_fits
from seglab.errors import UserError
from seglab.run_info import config_choices

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
        if (run_dir / LAST_FILE).is_file():
            return run_dir / LAST_FILE
        found = [path for path in runs_dir.glob(f"*/{LAST_FILE}") if path.is_file()]
        if not found:
            raise UserError(
                f"ckpt_path=last: no {LAST_FILE} in this run's directory nor under {runs_dir}/*/; give the run "
                "directory or the .ckpt file to resume from (ckpt_path=<run dir>)"
            )
        return max(found, key=lambda path: path.stat().st_mtime)
    path = Path(value).expanduser()
    if path.is_dir():
        for candidate in (path / LAST_FILE, path / LAST_FILE.name):
            if candidate.is_file():
                return candidate
        raise UserError(
            f"ckpt_path={value} is a directory without {LAST_FILE}; give a run directory of train.py or a .ckpt file"
        )
    if not path.is_file():
        raise UserError(f"ckpt_path={value} does not exist; give a .ckpt file, a run directory or last")
    return path
