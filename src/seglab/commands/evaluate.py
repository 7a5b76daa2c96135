"""``evaluate(cfg)``: score a checkpoint on a split with the model and data it was trained with."""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from seglab.checkpointing.restore import read_checkpoint, save_rebuilt_config, training_config
from seglab.config.builders import build_model, build_trainer
from seglab.config.compose import command_keys, run_overrides
from seglab.config.preflight import check_weights_fit, preflight
from seglab.config.validation import check_config, inference_modes
from seglab.config.value_rules import PATH, one_of, optional
from seglab.runtime.distributed import is_rank_zero, prepare_process, release_ddp_children
from seglab.runtime.out_of_memory import explain_out_of_memory
from seglab.runtime.write_targets import RUN_DIR_FIX, check_writable_dir, explain_write_failures
from seglab.tracking.metrics_file import format_metrics_table, write_json
from seglab.tracking.run_summary import file_row, format_summary, log_files_row, shown
from seglab.writers.instances import INSTANCE_EXPORT_FORMATS
from seglab.writers.semantic import EXPORT_FORMATS

log = logging.getLogger(__name__)

# Keys of the eval command that are not part of the training config (the keys conf/eval.yaml sets itself).
EVAL_ONLY_KEYS = command_keys("eval")
EVAL_RULES = {
    "eval.split": one_of("val", "test"),
    "eval.mode": inference_modes(),
    "export.format": optional(one_of(*dict.fromkeys(EXPORT_FORMATS + INSTANCE_EXPORT_FORMATS))),
    "export.dir": PATH,
}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score ``cfg.ckpt_path`` on ``cfg.eval.split`` with inference mode ``cfg.eval.mode``; print a per-class
    table, write ``metrics.json``, the rebuilt config (``resolved_config.yaml``) and, with ``cfg.export.format``,
    the predictions.

    A split without labels (Cityscapes test) gets predictions only: ``metrics.json`` then holds no scores.
    """
    check_config(cfg, EVAL_RULES)
    ckpt_path = Path(cfg.ckpt_path).expanduser()
    split, mode, export_format = cfg.eval.split, cfg.eval.mode, cfg.export.format
    run_dir = written_into = check_writable_dir(cfg.paths.output_dir, "paths.output_dir", RUN_DIR_FIX)
    if export_format is not None:
        written_into = check_writable_dir(cfg.export.dir, "export.dir", "choose another with export.dir=<dir>")
    train_cfg = training_config(ckpt_path, run_overrides(), EVAL_ONLY_KEYS, mode=mode, trusted=cfg.trusted)
    prepare_process(train_cfg.trainer)

    if is_rank_zero():
        save_rebuilt_config(train_cfg, run_dir)
    datamodule = preflight(train_cfg)  # before any data is loaded
    datamodule.setup("validate" if split == "val" else "test")
    model = build_model(train_cfg, datamodule)
    check_weights_fit(model, read_checkpoint(ckpt_path, cfg.trusted)["state_dict"], ckpt_path)
    model.check_inference_mode("eval.mode", mode)
    callbacks = [] if export_format is None else [model.prediction_writer(export_format, Path(cfg.export.dir), datamodule)]
    trainer = build_trainer(train_cfg, logger=False, callbacks=callbacks, default_root_dir=str(run_dir))
    run = trainer.validate if split == "val" else trainer.test
    with explain_out_of_memory(train_cfg, training=False), explain_write_failures(written_into), warnings.catch_warnings():
        # A training checkpoint holds its callbacks' states, which scoring it has no use for.
        warnings.filterwarnings("ignore", message=r"Be aware that when using `ckpt_path`, callbacks used to create")
        logged = run(model, datamodule=datamodule, ckpt_path=str(ckpt_path), verbose=False)[0]
    release_ddp_children(trainer)

    labelled = has_labels(logged, split)
    metrics = metrics_by_name(logged, split) if labelled else {}
    metrics.update(split=split, mode=mode, checkpoint=str(ckpt_path.resolve()))
    if export_format is not None:
        metrics["export"] = {"format": export_format, "dir": str(Path(cfg.export.dir).resolve())}
        log.info("Wrote %d %s predictions to %s", callbacks[0].written, export_format, cfg.export.dir)
    if trainer.is_global_zero:  # under DDP every rank runs evaluate(); rank 0 writes the files
        title = f"{ckpt_path.name}, {split}, {mode} inference"
        curve = save_trimap_curve(logged, split, train_cfg, run_dir / "trimap_curve.png", title) if labelled else None
        if curve is not None:
            metrics["trimap_curve"] = str(curve.resolve())
        write_json(metrics, run_dir / "metrics.json")
    if labelled:
        table = {k: v for k, v in logged.items() if k != f"{split}/loss"}
        log.info("Evaluation of %s on %s, %s inference (%s)\n%s", ckpt_path, split, mode, run_dir / "metrics.json",
                 format_metrics_table(table, "metric"))
    else:
        log.warning("The %s split has no labels: no scores%s", split,
                    "" if export_format else " (export.format writes the predictions)")
    if trainer.is_global_zero:
        exported = callbacks[0].written if callbacks else None
        log.info("%s", format_summary("Evaluation finished", run_dir, [
            ("checkpoint", str(ckpt_path.resolve())),
            file_row("metrics", run_dir / "metrics.json", run_dir),
            file_row("trimap curve", metrics["trimap_curve"], run_dir) if "trimap_curve" in metrics else None,
            ("predictions", f"{shown(cfg.export.dir, run_dir)}  ({exported} {export_format})") if callbacks else None,
            log_files_row(run_dir),
        ]))  # fmt: skip
    return metrics


def run(cfg: DictConfig) -> None:
    """``python eval.py`` / ``seglab-eval``: :func:`evaluate`."""
    evaluate(cfg)


def has_labels(logged: dict[str, float], split: str) -> bool:
    """Whether the split had labels: the pixel accuracy (semantic scores) or else the mask AP is a number."""
    key = f"{split}/aAcc" if f"{split}/aAcc" in logged else f"{split}/mAP"
    return not math.isnan(logged[key])


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


def save_trimap_curve(logged: dict[str, float], split: str, train_cfg: DictConfig, path: Path, title: str) -> Path | None:
    """Draw the trimap curve (mIoU against band width; with a post-processing the network's own curve beside it)
    as a PNG; ``None`` when the scores hold no trimap mIoU (instance models, ``metrics.trimap_widths=[]``)."""
    from PIL import Image

    from seglab.viz.trimap_curve import curve_prefixes, trimap_curve_image, trimap_curves

    curves = trimap_curves(logged, curve_prefixes(f"{split}/", train_cfg.get("postprocess") is not None))
    if not curves:
        return None
    Image.fromarray(trimap_curve_image(curves, title)).save(path)
    return path

