"""``evaluate(cfg)``: score a checkpoint on a split with the model and data it was trained with."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from seglab.builders import build_model, build_trainer
from seglab.callbacks import PredictionWriter
from seglab.checkpoint import training_config
from seglab.config import run_overrides
from seglab.data.transforms import find_normalize
from seglab.distributed import prepare_process, release_ddp_children
from seglab.errors import UserError
from seglab.inference.writers import EXPORT_FORMATS
from seglab.out_of_memory import explain_out_of_memory
from seglab.preflight import preflight
from seglab.reporting import format_metrics_table, write_json

log = logging.getLogger(__name__)

# Keys of the eval command that are not part of the training config.
EVAL_ONLY_KEYS = ("ckpt_path", "eval", "export", "task_name")


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt_path`` on ``cfg.eval.split`` with inference mode ``cfg.eval.mode``; print a per-class
    table, write ``metrics.json`` and, with ``cfg.export.format``, the predictions.

    A split without labelled pixels (Cityscapes test) gets predictions only: ``metrics.json`` then holds no scores.
    """
    ckpt_path = Path(cfg.ckpt_path).expanduser()
    split, mode = cfg.eval.split, cfg.eval.mode
    if split not in ("val", "test"):
        raise UserError(f"eval.split={split!r} is not a split eval.py scores; use val or test")
    export_format = cfg.export.format
    if export_format is not None and export_format not in EXPORT_FORMATS:
        raise UserError(f"export.format={export_format!r} is not a prediction format; use one of {list(EXPORT_FORMATS)}")
    train_cfg = training_config(ckpt_path, run_overrides(), EVAL_ONLY_KEYS, mode=mode, trusted=cfg.trusted)
    run_dir = Path(cfg.paths.output_dir)
    prepare_process(train_cfg.trainer)

    datamodule = preflight(train_cfg)  # before any data is loaded
    datamodule.setup("validate" if split == "val" else "test")
    model = build_model(train_cfg, datamodule)
    callbacks = [] if export_format is None else [prediction_writer(export_format, Path(cfg.export.dir), datamodule)]
    trainer = build_trainer(train_cfg, logger=False, callbacks=callbacks, default_root_dir=str(run_dir))
    run = trainer.validate if split == "val" else trainer.test
    with explain_out_of_memory(train_cfg, training=False):
        logged = run(model, datamodule=datamodule, ckpt_path=str(ckpt_path), verbose=False)[0]
    release_ddp_children(trainer)

    labelled = not math.isnan(logged[f"{split}/aAcc"])  # aAcc is NaN only when no pixel has a label
    metrics: dict[str, Any] = {}
    if labelled:
        metrics = {name: logged[f"{split}/{name}"] for name in ("mIoU", "mAcc", "aAcc", "fwIoU")}
        for score in ("IoU", "Acc"):
            metrics[score] = {name: logged[f"{split}/{score}/{name}"] for name in datamodule.class_names}
    metrics.update(split=split, mode=mode, checkpoint=str(ckpt_path.resolve()))
    if export_format is not None:
        metrics["export"] = {"format": export_format, "dir": str(Path(cfg.export.dir).resolve())}
        log.info("Wrote %d %s predictions to %s", callbacks[0].written, export_format, cfg.export.dir)
    if trainer.is_global_zero:  # under DDP every rank runs evaluate(); rank 0 writes the file
        write_json(metrics, run_dir / "metrics.json")
    if labelled:
        table = {k: v for k, v in logged.items() if k != f"{split}/loss"}
        log.info("Evaluation of %s on %s, %s inference (%s)\n%s", ckpt_path, split, mode, run_dir / "metrics.json",
                 format_metrics_table(table, "metric"))
    else:
        log.warning("The %s split has no labelled pixels: no scores%s", split,
                    "" if export_format else " (export.format=cityscapes|png|color writes the predictions)")
    return metrics


def prediction_writer(export_format: str, out_dir: Path, datamodule) -> PredictionWriter:
    """The callback writing predictions; ``color`` needs the input normalisation to show the images again."""
    normalize = find_normalize(datamodule.val_transforms)
    if export_format == "color" and normalize is None:
        raise UserError(
            "export.format=color overlays the predictions on the images, but data.val_transforms has no "
            "seglab.data.transforms.Normalize to undo; use export.format=png"
        )
    return PredictionWriter(export_format, out_dir, datamodule.palette, normalize)
