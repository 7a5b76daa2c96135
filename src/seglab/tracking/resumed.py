"""What a resumed run needs of the dashboard run (W&B, MLflow) it continues: its id, kept in a file of the run
directory, and which values it holds already (those dashboards cannot delete values)."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


def previous_run_id(resume_from: str | None, id_file: Path, run_dir: str | Path | None = None) -> str | None:
    """The id in ``id_file`` (relative to a run directory) of the run a resumed run continues: that of the run
    directory the checkpoint ``resume_from`` was written in (``<run>/checkpoints/x.ckpt``), else, for a run started
    again in its own directory (resumed into it, or a requeued SLURM job), this one's (``run_dir``). A new run has
    neither (a run directory holding an earlier run is only ever resumed, see :mod:`seglab.runtime.run_dir`)."""
    folder = checkpoint_run_dir(resume_from, id_file)
    if folder is None and run_dir is not None and (Path(run_dir) / id_file).is_file():
        folder = Path(run_dir)
    if folder is not None:
        return (folder / id_file).read_text().strip()
    if resume_from:
        log.info("No %s next to %s: resuming into a new dashboard run", id_file, resume_from)
    return None


def checkpoint_run_dir(checkpoint: str | None, id_file: Path) -> Path | None:
    """The run directory (holding ``id_file``) that the checkpoint file was written in, if any."""
    if not checkpoint:
        return None
    return next((f for f in list(Path(checkpoint).expanduser().resolve().parents)[:3] if (f / id_file).is_file()), None)


@rank_zero_only
def save_run_id(path: Path, run_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")


def not_recorded(metrics: Mapping[str, Any], step: int, recorded: Counter[tuple[str, int]]) -> dict[str, Any]:
    """``metrics`` without the values ``recorded`` holds already at ``step``; each one left out is counted off (a
    step can have several values of a metric: its training, validation and end-of-epoch rows)."""
    fresh = {}
    for key, value in metrics.items():
        if recorded[key, step] > 0:
            recorded[key, step] -= 1
        else:
            fresh[key] = value
    return fresh
