"""Logger factories used by the logger configs, and media for the loggers that show it."""

from seglab.loggers.mlflow import create_mlflow_logger
from seglab.loggers.wandb import create_wandb_logger, wandb_sync_hint

__all__ = ["create_mlflow_logger", "create_wandb_logger", "wandb_sync_hint"]
