"""Weights & Biases: online when credentials exist, offline otherwise (with the ``wandb sync`` command to run).

The run id is kept in ``<run dir>/wandb/run_id``; a run resumed from one of its checkpoints continues the same
W&B run. Under a W&B sweep agent the agent's run id is used.
"""

from __future__ import annotations

import logging
import netrc
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from seglab.config import job_run_name
from seglab.redaction import redact_command_line

log = logging.getLogger(__name__)

RUN_ID_FILE = Path("wandb") / "run_id"


def has_wandb_credentials() -> bool:
    """True when an API key is in the environment or in ~/.netrc (where ``wandb login`` stores it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def wandb_mode(offline: bool | None) -> str:
    """``WANDB_MODE`` when set (``offline``, ``online``, ``disabled``), else offline or online as configured, and
    by default online only with credentials. Passed explicitly, since W&B reads its environment only once."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if offline is None:
        offline = not has_wandb_credentials()
    return "offline" if offline else "online"


def previous_run_id(ckpt_path: str | None) -> str | None:
    """The W&B run id of the run directory a checkpoint was written in (``<run>/checkpoints/x.ckpt``)."""
    if not ckpt_path:
        return None
    for folder in list(Path(ckpt_path).expanduser().resolve().parents)[:3]:
        if (folder / RUN_ID_FILE).is_file():
            return (folder / RUN_ID_FILE).read_text().strip()
    log.info("No W&B run id next to %s (%s not found): resuming into a new W&B run", ckpt_path, RUN_ID_FILE)
    return None


@rank_zero_only
def save_run_id(save_dir: str | Path, run_id: str) -> None:
    path = Path(save_dir) / RUN_ID_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(run_id + "\n")


def create_wandb_logger(
    project: str = "seglab",
    save_dir: str = ".",
    entity: str | None = None,
    group: str | None = None,
    name: str | None = None,
    tags: Sequence[str] = (),
    notes: str | None = None,
    offline: bool | None = None,
    log_model: bool | str = False,
    resume_from: str | None = None,
    summary: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> WandbLogger:
    """A :class:`WandbLogger` whose mode follows ``WANDB_MODE`` when set, else ``offline``, else credentials.

    Args:
        resume_from: the checkpoint a resumed run starts from; its run directory's W&B run continues.
        summary: metric -> ``max``/``min``: the dashboard's summary shows the best value, not the last.
        log_model: ``True`` logs the checkpoints as W&B artifacts at the end, ``"all"`` as they are written
            (staged in the offline run too, and uploaded by ``wandb sync``).
    """
    import wandb
    from wandb.sdk.lib import runid

    own = Path(save_dir) / RUN_ID_FILE  # a run resumed into its own directory, or a requeued SLURM job
    run_id = (
        kwargs.pop("id", None)
        or os.environ.get("WANDB_RUN_ID")
        or previous_run_id(resume_from)
        or (own.read_text().strip() if own.is_file() else None)
        or runid.generate_id()
    )
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    save_run_id(save_dir, run_id)
    if redact_command_line(sys.argv) != sys.argv:  # W&B records the raw command line unless told not to
        kwargs["settings"] = wandb.Settings(x_disable_meta=True)
    logger = WandbLogger(
        project=project,
        save_dir=save_dir,
        entity=entity,
        group=group,
        name=job_run_name(name),
        tags=list(tags),
        notes=notes,
        id=run_id,
        mode=wandb_mode(offline),
        log_model=log_model,
        **kwargs,
    )
    for metric, goal in (summary or {}).items():
        logger.experiment.define_metric(metric, summary=goal, step_metric="trainer/global_step")
    return logger


def wandb_sync_hint(logger: WandbLogger) -> str | None:
    """The command that uploads an offline run, or ``None`` for an online run."""
    run = logger.experiment
    if not getattr(run.settings, "_offline", False) and run.settings.mode not in ("offline", "dryrun"):
        return None
    return f"wandb sync {Path(run.settings.sync_dir)}"
