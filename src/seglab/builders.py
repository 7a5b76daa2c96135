"""Instantiating the parts of a run from its composed config."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from seglab.errors import UserError, user_error_cause
from seglab.loggers.wandb import wandb_sync_hint

log = logging.getLogger(__name__)


def instantiate_part(node: DictConfig) -> Any:
    """``hydra.utils.instantiate`` that lets a :class:`UserError` raised while building a part through, instead
    of Hydra's wrapping exception, so the entry points print its one-line message."""
    try:
        return instantiate(node, _convert_="partial")
    except InstantiationException as err:
        cause = user_error_cause(err)
        if cause is None:
            raise
        raise cause from None


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    return instantiate_part(cfg.data)


def build_model(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    if cfg.model.num_classes != datamodule.num_classes:
        raise UserError(
            f"model.num_classes={cfg.model.num_classes} but the data has {datamodule.num_classes} classes "
            f"(data.num_classes); drop the model.num_classes override so it follows the data"
        )
    return instantiate_part(cfg.model)


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate_part(node) for node in (cfg.get("callbacks") or {}).values() if node is not None]


def build_loggers(cfg: DictConfig) -> list[Any]:
    return [instantiate_part(node) for node in (cfg.get("logger") or {}).values() if node is not None]


def close_loggers(loggers: list[Any]) -> None:
    """Finish W&B runs (printing the sync command of offline ones) so multiruns start a fresh run per job."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger" and logger._experiment is not None:
            hint = wandb_sync_hint(logger)
            logger.experiment.finish()
            if hint:
                log.info("W&B ran offline; upload this run to the dashboard with:\n  %s", hint)
