"""``train(cfg)``: fit a model, validate its best checkpoint, write ``metrics.json``; what ``train.py`` runs."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from seglab.builders import build_callbacks, build_datamodule, build_loggers, build_model, close_loggers
from seglab.callbacks import ConfigSnapshot
from seglab.class_weights import check_class_weights, resolve_auto_class_weights
from seglab.config import run_overrides
from seglab.redaction import redact, redact_files, secrets_in
from seglab.reporting import format_metrics_table, write_json
from seglab.run_info import describe_run

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, then validate the best checkpoint (and test it when ``cfg.test``); return the final metrics.

    The run directory (``cfg.paths.output_dir``) receives ``resolved_config.yaml``, ``checkpoints/``, the
    logs and ``metrics.json`` with the final metrics under their logged names (``val/mIoU``, ...). Secrets
    (API keys, tokens, passwords) are masked in every file and logger (see :mod:`seglab.redaction`).
    """
    run_dir = Path(cfg.paths.output_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    check_class_weights(cfg)  # before any data is loaded
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")  # fail on a bad data.root before building the model
    class_weights = resolve_auto_class_weights(cfg, datamodule)  # loss.class_weights=auto, before the loss exists
    model = build_model(cfg, datamodule)
    callbacks = build_callbacks(cfg) + [ConfigSnapshot(cfg, run_overrides())]
    resolved = OmegaConf.to_container(cfg, resolve=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    redact_files(run_dir.glob(".hydra/*.yaml"), secrets_in(resolved))  # Hydra wrote them as typed
    (run_dir / "resolved_config.yaml").write_text(OmegaConf.to_yaml(redact(resolved)))

    loggers = build_loggers(cfg)
    try:
        description = {**describe_run(cfg, model), **(class_weights or {})}
        for logger in loggers:
            logger.log_hyperparams(description)
        trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        log.info("Validating %s", best or "the final weights")
        metrics = trainer.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0]
        if cfg.get("test"):
            metrics.update(trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)[0])
    finally:
        close_loggers(loggers)

    write_json(metrics, run_dir / "metrics.json")
    log.info("Final metrics (%s)\n%s", run_dir / "metrics.json", format_metrics_table(metrics, "metric"))
    return metrics
