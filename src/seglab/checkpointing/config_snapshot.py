"""Stores the run's resolved config, Hydra overrides and config group choices in every checkpoint.

``eval.py ckpt_path=...`` rebuilds the model and data from them, so a checkpoint is enough to evaluate it.
Only plain containers are stored, so the checkpoint loads with ``torch.load(weights_only=True)``; secrets are
masked (see :mod:`seglab.tracking.redaction`).
"""

from __future__ import annotations

from typing import Any, Sequence

import lightning as L
from omegaconf import DictConfig, OmegaConf

from seglab.tracking.redaction import redact, redact_command_line
from seglab.tracking.run_info import config_choices

CHECKPOINT_KEY = "seglab"


class ConfigSnapshot(L.Callback):
    def __init__(self, cfg: DictConfig, overrides: Sequence[str]) -> None:
        self.snapshot = {
            "config": redact(OmegaConf.to_container(cfg, resolve=True)),
            "overrides": redact_command_line(overrides),
            "choices": config_choices(),  # model=..., for messages about checkpoints that do not fit
        }

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.snapshot
