"""Weights & Biases: online when credentials exist, offline otherwise (with the ``wandb sync`` command to run)."""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any, Sequence

from lightning.pytorch.loggers import WandbLogger


def has_wandb_credentials() -> bool:
    """True when an API key is in the environment or in ~/.netrc (where ``wandb login`` stores it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


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
    **kwargs: Any,
) -> WandbLogger:
    """A :class:`WandbLogger` whose mode follows ``WANDB_MODE`` when set, else ``offline``, else credentials."""
    if os.environ.get("WANDB_MODE"):
        offline = os.environ["WANDB_MODE"] in ("offline", "dryrun")
    elif offline is None:
        offline = not has_wandb_credentials()
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        project=project,
        save_dir=save_dir,
        entity=entity,
        group=group,
        name=name,
        tags=list(tags),
        notes=notes,
        offline=offline,
        log_model=False if offline else log_model,
        **kwargs,
    )


def wandb_sync_hint(logger: WandbLogger) -> str | None:
    """The command that uploads an offline run, or ``None`` for an online run."""
    run = logger.experiment
    if not getattr(run.settings, "_offline", False) and run.settings.mode not in ("offline", "dryrun"):
        return None
    return f"wandb sync {Path(run.settings.sync_dir)}"
