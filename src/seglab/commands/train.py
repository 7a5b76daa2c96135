"""``train(cfg)``: fit a model, validate its best checkpoint, write ``metrics.json``; ``run(cfg)`` is what
``train.py`` / ``python -m seglab train`` / ``seglab-train`` do."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from seglab.callbacks import NonFiniteLossGuard
from seglab.callbacks.step_seeding import StepSeeding
from seglab.checkpointing.config_snapshot import ConfigSnapshot
from seglab.checkpointing.io import load_checkpoint
from seglab.checkpointing.preemption import PreemptionCheckpoint, ctrl_c_stops_at_once
from seglab.checkpointing.requeue import requeued_checkpoint
from seglab.checkpointing.resume import resume_checkpoint
from seglab.config.builders import build_callbacks, build_loggers, build_model, build_trainer, close_loggers
from seglab.config.compose import run_overrides
from seglab.config.preflight import check_optimizer_choice, check_weights_fit, preflight
from seglab.config.tree import print_config_tree
from seglab.config.validation import check_config
from seglab.losses.class_weights import resolve_auto_class_weights
from seglab.runtime.distributed import is_rank_zero, prepare_process, release_ddp_children
from seglab.runtime.out_of_memory import explain_out_of_memory
from seglab.runtime.run_dir import check_run_dir
from seglab.runtime.write_targets import CHECKPOINT_DIR, check_checkpoint_room, check_run_dirs, explain_write_failures
from seglab.tracking.metrics_file import format_metrics_table, write_json
from seglab.tracking.redaction import redact, redact_files, secrets_in
from seglab.tracking.resume_loggers import ResumeLoggers
from seglab.tracking.run_info import describe_run
from seglab.tracking.run_summary import (
    best_checkpoint_row, dashboard_commands, dashboard_rows, file_row, format_summary, log_files_row,
)  # fmt: skip

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, then validate the best checkpoint (and test it when ``cfg.test``); return the final metrics.

    The run directory (``cfg.paths.output_dir``) receives ``resolved_config.yaml``, ``checkpoints/``, the
    logs and ``metrics.json`` with the final metrics under their logged names (``val/mIoU``, ...). Secrets
    (API keys, tokens, passwords) are masked in every file and logger (see :mod:`seglab.tracking.redaction`).

    Every config value is checked before anything is built (:mod:`seglab.config.validation`), then where the run
    writes (:mod:`seglab.runtime.write_targets`: a full disk later stops it naming the last good checkpoint), then the
    config's parts before any data is read (:mod:`seglab.config.preflight`); ``ckpt_path`` resumes (a file, a run
    directory or ``last``, see :mod:`seglab.checkpointing.resume`), exactly where the checkpoint was written even mid-epoch, and a
    run directory that holds an earlier run is only resumed, never overwritten (:mod:`seglab.runtime.run_dir`).
    SIGTERM/SIGUSR1/Ctrl-C save ``last.ckpt`` and stop; a non-finite loss stops (or skips, ``trainer.skip_nonfinite``).
    Without validation (``trainer.limit_val_batches=0``) ``metrics.json`` holds the last training metrics.
    """
    check_config(cfg)  # every value, before anything is built
    print_config_tree(cfg)  # on rank 0, unless print_config=false
    check_optimizer_choice(cfg)  # a task's paper optimizer unless one is chosen (Panoptic-DeepLab: adam)
    check_run_dirs(cfg)
    run_dir = Path(cfg.paths.output_dir)
    prepare_process(cfg.trainer)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = preflight(cfg)  # before any data is loaded
    ckpt_path = resume_checkpoint(cfg)
    check_run_dir(run_dir, ckpt_path)  # an earlier run's directory is only resumed, never overwritten
    datamodule.setup("fit")  # fail on a bad data.root before building the model
    class_weights = resolve_auto_class_weights(cfg, datamodule)  # loss.class_weights=auto, before the loss exists
    model = build_model(cfg, datamodule)
    check_checkpoint_room(cfg, model)
    if ckpt_path is not None:
        check_weights_fit(model, load_checkpoint(ckpt_path, bool(cfg.get("trusted")), mmap=True)["state_dict"], ckpt_path)
    callbacks = build_callbacks(cfg) + [
        ConfigSnapshot(cfg, run_overrides()),
        StepSeeding(),
        NonFiniteLossGuard(skip=cfg.trainer.get("skip_nonfinite", False)),
        PreemptionCheckpoint(),
        ResumeLoggers(),
    ]
    if is_rank_zero():  # under DDP every rank runs train(); rank 0 writes the files
        resolved = OmegaConf.to_container(cfg, resolve=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        redact_files(run_dir.glob(".hydra/*.yaml"), secrets_in(resolved))  # Hydra wrote them as typed
        (run_dir / "resolved_config.yaml").write_text(OmegaConf.to_yaml(redact(resolved)))

    # Lightning turns the loggers off in a fast dev run (debug=fdr); building them would already write their files.
    loggers = [] if cfg.trainer.get("fast_dev_run") else build_loggers(cfg, resume_from=ckpt_path)
    dashboards: list[str] | None = None  # the dashboard commands, for the closing summary
    try:
        description = {**describe_run(cfg, model), **(class_weights or {})}
        for logger in loggers:
            logger.log_hyperparams(description)
        trainer = build_trainer(cfg, callbacks=callbacks, logger=loggers or False)
        checkpoints = OmegaConf.select(cfg, CHECKPOINT_DIR)
        with explain_out_of_memory(cfg, training=True), explain_write_failures(run_dir, checkpoints):
            trainer.fit(model, datamodule=datamodule, ckpt_path=requeued_checkpoint(trainer) or ckpt_path)
            trained = {name: float(value) for name, value in trainer.callback_metrics.items()}
            best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
            log.info("Validating %s", best or "the final weights")
            validated = trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)
            if not validated:  # trainer.limit_val_batches=0
                log.info("Validation is off: metrics.json holds the metrics of the last training epoch")
            metrics = validated[0] if validated else trained
            if cfg.get("test"):
                metrics.update(trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0])
            dashboards = dashboard_commands(loggers) if trainer.is_global_zero else []
    finally:
        close_loggers(loggers, sync_hint=dashboards is None)  # a run that fails still says how to sync W&B
    release_ddp_children(trainer)

    if trainer.is_global_zero:  # rank 0 writes the file
        write_json(metrics, run_dir / "metrics.json")
    log.info("Final metrics (%s)\n%s", run_dir / "metrics.json", format_metrics_table(metrics, "metric"))
    if trainer.is_global_zero:
        log.info("%s", training_summary(cfg, trainer, dashboards or []))
    return metrics


def training_summary(cfg: DictConfig, trainer: L.Trainer, dashboards: list[str]) -> str:
    """The closing block of a training run (:mod:`seglab.tracking.run_summary`)."""
    run_dir = Path(cfg.paths.output_dir)
    best = best_checkpoint_row(trainer.checkpoint_callback, run_dir, bool(cfg.get("trusted")))
    last = getattr(trainer.checkpoint_callback, "dirpath", None)
    return format_summary("Run finished", run_dir, [
        best or (file_row("last checkpoint", Path(last) / "last.ckpt", run_dir) if last else None),
        file_row("metrics", run_dir / "metrics.json", run_dir),
        file_row("media", run_dir / "media", run_dir),
        log_files_row(run_dir),
        *dashboard_rows(dashboards),
    ])  # fmt: skip


def run(cfg: DictConfig) -> float | None:
    """Train; return ``cfg.optimized_metric``'s final value, the one Hydra sweepers optimise. Ctrl-C exits with
    status 130 and the command that resumes the run (after saving ``last.ckpt`` while training)."""
    with ctrl_c_stops_at_once(Path(cfg.paths.output_dir)):
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))
