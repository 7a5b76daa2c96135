"""``evaluate(cfg)``: score a checkpoint on a split with the model and data it was trained with."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from seglab.builders import build_datamodule, build_model
from seglab.callbacks.config_snapshot import CHECKPOINT_KEY
from seglab.callbacks.instance_export import InstanceExport
from seglab.class_weights import use_trained_class_weights
from seglab.config import compose_config, merge_overrides, override_key, quote_override_value, run_overrides
from seglab.errors import UserError
from seglab.reporting import format_metrics_table, write_json
from seglab.tasks.instance import InstanceSegmentationModule

log = logging.getLogger(__name__)

# Keys of the eval command that are not part of the training config.
EVAL_ONLY_KEYS = ("ckpt_path", "eval", "export", "task_name")
# Evaluation always scores the whole split, whatever debug settings the training run had.
WHOLE_SPLIT = [
    "++trainer.fast_dev_run=false",
    "++trainer.limit_val_batches=1.0",
    "++trainer.limit_test_batches=1.0",
    "model.backbone.weights=null",  # the checkpoint holds the weights: never download
]


def read_training_snapshot(ckpt_path: Path) -> dict[str, Any]:
    """The config and overrides that :class:`~seglab.callbacks.ConfigSnapshot` stored in the checkpoint."""
    if not ckpt_path.is_file():
        raise UserError(f"ckpt_path={ckpt_path} does not exist; give the path of a .ckpt file from a run's checkpoints/")
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    if CHECKPOINT_KEY not in checkpoint:
        raise UserError(f"{ckpt_path} was not written by seglab's train.py: it holds no training config")
    return checkpoint[CHECKPOINT_KEY]


def training_config(ckpt_path: Path, eval_overrides: list[str]) -> DictConfig:
    """Compose the training config again: the checkpoint's overrides, then the eval command's own."""
    snapshot = read_training_snapshot(ckpt_path)
    base = [o for o in snapshot["overrides"] if override_key(o) not in ("ckpt_path", "debug")]
    trained_root = snapshot["config"]["data"].get("root")
    if trained_root is not None:  # the data is where training found it, even if that came from the environment
        base.append(f"data.root={quote_override_value(trained_root)}")
    user = [o for o in eval_overrides if override_key(o).split(".")[0] not in EVAL_ONLY_KEYS]
    cfg = compose_config("train", merge_overrides(base + WHOLE_SPLIT, user))
    use_trained_class_weights(cfg, snapshot["config"])  # loss.class_weights=auto: the weights training used
    return cfg


def metrics_by_name(logged: dict[str, float], split: str) -> dict[str, Any]:
    """Logged ``<split>/<name>`` values as ``{name: value}``, per-class ones grouped (``{"IoU": {class: value}}``,
    ``{"AP": {...}}``); the loss is left out."""
    metrics: dict[str, Any] = {}
    for key, value in logged.items():
        name = key.removeprefix(f"{split}/")
        if name == "loss":
            continue
        if "/" in name:
            group, class_name = name.split("/", 1)
            metrics.setdefault(group, {})[class_name] = value
        else:
            metrics[name] = value
    return metrics


def instance_export_callbacks(export: DictConfig | None, model: Any) -> list[InstanceExport]:
    """The instance export ``export.format`` asks for, for an instance model (semantic exports are not this)."""
    if export is None or export.get("format") is None or not isinstance(model, InstanceSegmentationModule):
        return []
    return [InstanceExport(export.format, Path(export.dir).expanduser())]


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt_path`` on ``cfg.eval.split``; print a per-class table and write ``metrics.json``."""
    ckpt_path = Path(cfg.ckpt_path).expanduser()
    split = cfg.eval.split
    if split not in ("val", "test"):
        raise UserError(f"eval.split={split!r} is not a split eval.py scores; use val or test")
    train_cfg = training_config(ckpt_path, run_overrides())
    run_dir = Path(cfg.paths.output_dir)

    datamodule = build_datamodule(train_cfg)
    datamodule.setup("validate" if split == "val" else "test")
    model = build_model(train_cfg, datamodule)
    callbacks = instance_export_callbacks(cfg.get("export"), model)
    trainer = instantiate(train_cfg.trainer, logger=False, callbacks=callbacks, default_root_dir=str(run_dir))
    run = trainer.validate if split == "val" else trainer.test
    logged = run(model, datamodule=datamodule, ckpt_path=str(ckpt_path), verbose=False)[0]

    metrics = metrics_by_name(logged, split)
    metrics.update(split=split, mode="whole", checkpoint=str(ckpt_path.resolve()))
    write_json(metrics, run_dir / "metrics.json")
    table = {k: v for k, v in logged.items() if k != f"{split}/loss"}
    log.info("Evaluation of %s on %s (%s)\n%s", ckpt_path, split, run_dir / "metrics.json", format_metrics_table(table, "metric"))
    return metrics
