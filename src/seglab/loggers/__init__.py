"""Logger factories used by the logger configs."""

from seglab.loggers.wandb import create_wandb_logger, wandb_sync_hint

__all__ = ["create_wandb_logger", "wandb_sync_hint"]
