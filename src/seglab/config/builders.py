"""Instantiating the parts of a run from its composed config."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from seglab.checkpointing.io import SafeCheckpointIO
from seglab.runtime.errors import UserError, user_error_cause
from seglab.tracking.wandb import wandb_sync_hint

log = logging.getLogger(__name__)

# Keys of the trainer config that are seglab's options, not arguments of Lightning's Trainer.
SEGLAB_TRAINER_KEYS = ("skip_nonfinite",)


def instantiate_part(node: DictConfig, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` (``kwargs`` on top of ``node``) that lets a :class:`UserError` raised while
    building a part through, instead of Hydra's wrapping exception, so the entry points print its one-line message."""
    try:
        return instantiate(node, _convert_="partial", **kwargs)
    except InstantiationException as err:
        cause = user_error_cause(err)
        if cause is None:
            raise
        raise cause from None


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The data module of ``cfg.data``; ``data.return_instances=null`` (the data configs' default) becomes whether
    the model's task trains on instance targets (its ``needs_instance_targets``), so a data config never reads the
    model's config."""
    return instantiate_part(cfg.data, **instance_targets(cfg))


def task_class(cfg: DictConfig) -> type | None:
    """The class ``model._target_`` names (the task: what it needs and supports), or ``None`` if it names none
    (building the model then says what is wrong)."""
    try:
        return get_class(cfg.model._target_)
    except (ImportError, ValueError, AttributeError):
        return None


def instance_targets(cfg: DictConfig) -> dict[str, bool]:
    """``{"return_instances": ...}`` for a data config that leaves it to the model (null), else nothing."""
    needed = getattr(task_class(cfg), "needs_instance_targets", False)
    chosen = cfg.data.get("return_instances", False)
    if chosen is False and needed:
        raise UserError(
            f"data.return_instances=false, but {cfg.model._target_.rsplit('.', 1)[-1]} trains on instance targets: "
            "instance models need data.return_instances=true (or null, its default: what the model needs)"
        )
    return {"return_instances": needed} if "return_instances" in cfg.data and chosen is None else {}


def build_model(cfg: DictConfig, datamodule: L.LightningDataModule) -> L.LightningModule:
    check_num_classes(cfg.model.num_classes, datamodule.num_classes)
    if cfg.get("postprocess") is None:
        return instantiate_part(cfg.model)
    if "postprocess" not in cfg.model:
        model = cfg.model._target_.rsplit(".", 1)[-1]
        raise UserError(
            f"postprocess (a dense CRF) refines semantic class maps, and {model} predicts instances: drop the "
            "postprocess=... override"
        )
    from seglab.data.transforms import find_normalize  # the CRF's colour images are the inputs un-normalised

    return instantiate_part(cfg.model, input_normalize=find_normalize(datamodule.val_transforms))


def check_num_classes(model_classes: int, data_classes: int) -> None:
    if model_classes != data_classes:
        raise UserError(
            f"model.num_classes={model_classes} but the data has {data_classes} classes "
            f"(data.num_classes); drop the model.num_classes override so it follows the data"
        )


def build_trainer(cfg: DictConfig, **kwargs: Any) -> L.Trainer:
    """The Lightning Trainer of ``cfg.trainer`` (``kwargs`` on top), which saves and loads checkpoints through
    :class:`~seglab.checkpointing.io.SafeCheckpointIO` (atomic saves; loads that run no code unless ``cfg.trusted``)."""
    node = OmegaConf.to_container(cfg.trainer, resolve=True)
    for key in SEGLAB_TRAINER_KEYS:
        node.pop(key, None)
    plugins = instantiate(node.pop("plugins", None) or [])
    return instantiate(node, plugins=[*plugins, SafeCheckpointIO(trusted=bool(cfg.get("trusted")))], **_display_options(node, kwargs))


def _display_options(node: dict[str, Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` for the Trainer: a config's own model summary callback tells Lightning not to add its default
    (which it would announce: "Trainer already configured with model summary callbacks"), and
    ``trainer.enable_progress_bar=false`` drops the config's progress bar (Lightning refuses one then)."""
    from lightning.pytorch.callbacks import ModelSummary, ProgressBar

    callbacks = list(kwargs.get("callbacks") or [])
    if node.get("enable_progress_bar") is False:
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    options = {**kwargs, "callbacks": callbacks} if "callbacks" in kwargs else dict(kwargs)
    if any(isinstance(c, ModelSummary) for c in callbacks) and "enable_model_summary" not in node:
        options["enable_model_summary"] = False
    return options


def build_callbacks(cfg: DictConfig) -> list[L.Callback]:
    return [instantiate_part(node) for node in (cfg.get("callbacks") or {}).values() if node is not None]


def build_loggers(cfg: DictConfig, resume_from: Path | None = None) -> list[Any]:
    """The loggers of ``cfg.logger``; those with a ``resume_from`` option (W&B, MLflow) are given the checkpoint
    file the run resumes from, whichever form ``ckpt_path`` took (a file, a run directory or ``last``)."""
    nodes = [node for node in (cfg.get("logger") or {}).values() if node is not None]
    resumed = {"resume_from": str(resume_from)} if resume_from is not None else {}
    return [instantiate_part(node, **(resumed if "resume_from" in node else {})) for node in nodes]


def close_loggers(loggers: list[Any], sync_hint: bool = True) -> None:
    """Finish W&B runs so multiruns start a fresh run per job; ``sync_hint``: print the sync command of offline ones
    (a run that ends normally prints it in its closing summary instead)."""
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger" and logger._experiment is not None:
            hint = wandb_sync_hint(logger) if sync_hint else None
            logger.experiment.finish()
            if hint:
                log.info("W&B ran offline; upload this run to the dashboard with:\n  %s", hint)
