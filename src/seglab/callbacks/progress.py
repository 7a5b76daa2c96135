"""The training bar with the whole run's progress: ``Epoch 3/11 · step 130/480 · 0:04:12 left``, and one log line per
epoch (so ``<run dir>/train.log`` follows the run as it trains, not only the console's bar)."""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import RichProgressBar

log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """``0:04:12``; ``2 days, 3:00:00`` past a day."""
    return str(timedelta(seconds=round(seconds)))


def run_progress(done: int, total: float, elapsed: float, done_at_start: int = 0) -> str:
    """The run's progress: ``step 130/480 · 0:04:12 left``.

    Args:
        done: optimizer steps done (the trainer's global step).
        total: the steps the run makes (``trainer.estimated_stepping_batches``; infinite: a run without end).
        elapsed: seconds since this process started training, at step ``done_at_start`` (a resumed run's first step),
            so the time a run spent before it was resumed does not count.
    """
    if math.isinf(total) or total <= 0:
        return f"step {done}"
    total = int(total)
    text = f"step {min(done, total)}/{total}"
    if done >= total:
        return f"{text} · done"
    trained = done - done_at_start
    if trained <= 0 or elapsed <= 0:  # the first step: no pace yet
        return f"{text} · --:-- left"
    return f"{text} · {format_duration(elapsed / trained * (total - done))} left"


def epoch_text(trainer: L.Trainer, epoch: int) -> str:
    """``Epoch 3/12`` for the 0-based ``epoch`` (epochs from 1, as in the log lines and the closing summary)."""
    return f"Epoch {epoch + 1}" + (f"/{trainer.max_epochs}" if trainer.max_epochs not in (None, -1) else "")


def epoch_line(trainer: L.Trainer, progress: str) -> str:
    """``Epoch 3/12 · step 130/480 · 0:04:12 left · train/loss_epoch 0.4100 · val/mIoU 0.6200``."""
    shown = {k: v for k, v in sorted(trainer.progress_bar_metrics.items()) if not k.endswith("_step")}
    metrics = "".join(f" · {name} {float(value):.4f}" for name, value in shown.items())
    return f"{epoch_text(trainer, trainer.current_epoch)} · {progress}{metrics}"


class RunProgressBar(RichProgressBar):
    """Lightning's Rich bar whose training description also holds :func:`run_progress`, updated every step, and
    that logs :func:`epoch_line` at the end of every training epoch (after its validation)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._started: tuple[float, int] | None = None  # (time, global step) when this process started training

    def run_progress(self) -> str:
        started, at = self._started or (time.monotonic(), self.trainer.global_step)
        return run_progress(self.trainer.global_step, self.trainer.estimated_stepping_batches, time.monotonic() - started, at)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self._started = (time.monotonic(), trainer.global_step)

    def _get_train_description(self, current_epoch: int) -> str:
        return f"{epoch_text(self.trainer, current_epoch)} · {self.run_progress()}"

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)
        if self.progress is not None and self.train_progress_bar_id is not None:
            self.progress.update(self.train_progress_bar_id, description=self._get_train_description(trainer.current_epoch))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if trainer.is_global_zero:
            log.info("%s", epoch_line(trainer, self.run_progress()))
