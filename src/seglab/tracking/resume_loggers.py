"""A resumed run's logged metrics continue the interrupted run's curves: no step twice, no epoch mean cut short."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn

CHECKPOINT_KEY = "seglab_epoch_metrics"


class ResumeLoggers(L.Callback):
    """Two things Lightning leaves out of a resume:

    - When training restores a checkpoint (any ``ckpt_path``, or a SLURM requeue), every logger that has a
      ``resume_at(global_step)`` method (seglab's CSV, TensorBoard, W&B and MLflow loggers) is told where the run
      goes on, so the metrics the interrupted run logged for the steps trained again do not appear twice. Loading a
      checkpoint to evaluate it (the final validation of ``best.ckpt``) changes nothing.
    - A checkpoint written in the middle of an epoch also holds the running sums of the metrics logged per epoch
      (``train/loss_epoch``, ...); a run resumed from it adds them to its own, so the epoch's value is over the
      whole epoch, as in an uninterrupted run, not over the batches after the resume. (Lightning keeps them in its
      result collection, ``trainer.fit_loop.epoch_loop._results``, which checkpoints do not hold.)
    """

    def __init__(self) -> None:
        self.pending: dict[str, dict[str, torch.Tensor]] = {}

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != TrainerFn.FITTING or trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return  # at the end of an epoch the sums are complete, and the resumed run starts the next one
        checkpoint[CHECKPOINT_KEY] = {
            key: {"value": metric.value.detach().cpu().clone(), "count": getattr(metric, "cumulated_batch_size", None)}
            for key, metric in trainer.fit_loop.epoch_loop._results.items()
            if metric.is_tensor and metric.meta.on_epoch
        }

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if trainer.state.fn != TrainerFn.FITTING:
            return
        self.pending = dict(checkpoint.get(CHECKPOINT_KEY, {}))
        for logger in trainer.loggers:
            resume_at = getattr(logger, "resume_at", None)
            if resume_at is not None:
                resume_at(checkpoint["global_step"])

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if not self.pending:
            return
        results = trainer.fit_loop.epoch_loop._results
        for key in [key for key in self.pending if key in results]:  # logged by this batch's training_step
            saved, metric = self.pending.pop(key), results[key]
            value = saved["value"].to(metric.value.device, metric.value.dtype)
            if metric.meta.is_max_reduction:
                metric.value = torch.maximum(metric.value, value)
            elif metric.meta.is_min_reduction:
                metric.value = torch.minimum(metric.value, value)
            else:  # mean (a weighted sum and its count) or sum
                metric.value = metric.value + value
                if metric.meta.is_mean_reduction and saved["count"] is not None:
                    metric.cumulated_batch_size = metric.cumulated_batch_size + saved["count"].to(metric.value.device)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.pending = {}  # keys the rest of the resumed epoch never logged again
