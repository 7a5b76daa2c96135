"""Where a requeued SLURM job resumes training.

Lightning's SLURM environment handles the requeue signal (``#SBATCH --signal=USR1@<s>``, see
``conf/hydra/launcher/submitit_slurm.yaml``): it saves ``hpc_ckpt_<n>.ckpt`` in the run directory and requeues the
job. A job preempted without that signal is requeued by SLURM with only the checkpoints of ``ModelCheckpoint``.
The requeued job runs the same Hydra job again, in the same run directory, and resumes from the newer of the two.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import lightning as L

log = logging.getLogger(__name__)


def requeued_checkpoint(trainer: L.Trainer) -> str | None:
    """The newest of ``hpc_ckpt_*.ckpt`` and ``last*.ckpt`` when SLURM restarted this job, else ``None``.

    (Left alone, Lightning would take an ``hpc_ckpt`` even when ``last.ckpt`` is newer, e.g. after a time-limit
    requeue followed by a preemption.)
    """
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    if restarts == 0:
        return None
    candidates = list(Path(trainer.default_root_dir).glob("hpc_ckpt_*.ckpt"))
    for callback in trainer.checkpoint_callbacks:
        if getattr(callback, "dirpath", None):
            candidates += Path(callback.dirpath).glob("last*.ckpt")
    if not candidates:
        log.warning("SLURM restarted this job (restart %d) before any checkpoint was saved: training starts over", restarts)
        return None
    newest = max(candidates, key=lambda path: path.stat().st_mtime)
    log.info("SLURM restarted this job (restart %d): resuming from %s", restarts, newest)
    return str(newest)
