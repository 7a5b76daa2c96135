"""Weights & Biases: online when credentials exist, offline otherwise (with the ``wandb sync`` command to run).

The run id is kept in ``<run dir>/wandb/run_id``; a run resumed from one of its checkpoints continues the same
W&B run, without logging twice the steps it trains again. Under a W&B sweep agent the agent's run id is used.
"""

from __future__ import annotations

import logging
import netrc
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

from lightning.pytorch.loggers import WandbLogger as LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_only

from seglab.config.compose import job_run_name
from seglab.runtime.extras import require_extra
from seglab.tracking.redaction import redact_command_line
from seglab.tracking.resumed import checkpoint_run_dir, not_recorded, previous_run_id, save_run_id
from seglab.tracking.wandb_history import recorded_values

log = logging.getLogger(__name__)

RUN_ID_FILE = Path("wandb") / "run_id"
# How often W&B writes its local log (W&B's default: 15 s); what a kill loses of the dashboard's records.
TRANSACTION_LOG_FLUSH_SECONDS = 1.0


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


class WandbLogger(LightningWandbLogger):
    """``lightning.pytorch.loggers.WandbLogger`` that does not log twice the steps a resumed run trains again.

    W&B cannot delete logged values, so :meth:`resume_at` reads which values of the steps trained again the run's
    earlier segments already hold (their local ``.wandb`` files, see :mod:`seglab.tracking.wandb_history`) and
    :meth:`log_metrics` leaves those out: every step appears once, with the value the interrupted run logged (the
    same value, when the run is deterministic).

    Args:
        run_dirs: the run directories whose ``wandb/`` folders hold this W&B run's earlier segments.
        *args, **kwargs: Lightning's.
    """

    def __init__(self, *args: Any, run_dirs: Sequence[str | Path] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_dirs = [Path(folder) for folder in run_dirs]
        self.recorded: Counter[tuple[str, int]] = Counter()

    @rank_zero_only
    def resume_at(self, step: int) -> None:
        run = self.experiment
        current = Path(run.settings.sync_dir).resolve()
        segments = {
            path.resolve()
            for folder in self.run_dirs
            for path in (folder / "wandb").glob(f"*run-*-{run.id}/run-{run.id}.wandb")
            if path.parent.resolve() != current
        }
        self.recorded = recorded_values(sorted(segments), since=step)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        if step is not None and self.recorded:
            metrics = not_recorded(metrics, step, self.recorded)
            if not metrics:
                return
        super().log_metrics(metrics, step)


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
    require_extra("wandb", "logger=wandb")
    import wandb
    from wandb.sdk.lib import runid

    run_id = (
        kwargs.pop("id", None)
        or os.environ.get("WANDB_RUN_ID")
        or previous_run_id(resume_from, RUN_ID_FILE, save_dir)
        or runid.generate_id()
    )
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    save_run_id(Path(save_dir) / RUN_ID_FILE, run_id)
    settings: dict[str, Any] = {}
    if redact_command_line(sys.argv) != sys.argv:  # W&B records the raw command line unless told not to
        settings["x_disable_meta"] = True
    if "x_transaction_log_flush_interval" in getattr(wandb.Settings, "model_fields", {}):  # recent wandb only
        settings["x_transaction_log_flush_interval"] = TRANSACTION_LOG_FLUSH_SECONDS
    kwargs["settings"] = wandb.Settings(**settings)
    earlier = checkpoint_run_dir(resume_from, RUN_ID_FILE)
    logger = WandbLogger(
        run_dirs=[save_dir, *([earlier] if earlier else [])],
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
