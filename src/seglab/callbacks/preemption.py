"""Preemption: on SIGTERM or SIGUSR1, save ``last.ckpt`` and stop, so the run resumes where it was."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Sequence

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from seglab.callbacks.model_checkpoint import validation_follows

log = logging.getLogger(__name__)


class Preempted(SystemExit):
    """Raised once the checkpoint is saved; the exit status is 128 + the signal number, as for a process killed by
    the signal, so schedulers see the job as preempted (SIGTERM: 143)."""


class PreemptionCheckpoint(L.Callback):
    """Saves ``<checkpoints>/last.ckpt`` and stops training when the process receives one of ``signals``.

    Clusters send SIGTERM (SLURM with ``--signal=USR1@<seconds>``: SIGUSR1) a while before they kill a job. The
    handler only notes the signal; the checkpoint is written at the end of the current training batch, where the
    state is consistent, and the run stops with :class:`Preempted`. A validation pass in progress is finished first
    (its partial scores cannot be saved), and so is the batch before it (a run resumed there would skip it). Under
    DDP the processes agree at every batch end, so they all stop at the same one. A signal that already has a
    handler other than SIGTERM's (Lightning's SLURM auto-requeue handles SIGUSR1 itself) is left to it.

    Args:
        signals: names of the signals that mean "save and stop".
    """

    def __init__(self, signals: Sequence[str] = ("SIGTERM", "SIGUSR1")) -> None:
        self.signals = [signal.Signals[name] for name in signals]
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning's own SIGTERM handler is set (it would stop in the middle of a validation pass).
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in self.signals:
            current = signal.getsignal(signum)
            if signum != signal.SIGTERM and current not in (signal.SIG_DFL, None):
                continue
            self._previous[signum] = current
            signal.signal(signum, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        if validation_follows(trainer):
            return
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        path = checkpoint_dir(trainer) / "last.ckpt"
        trainer.save_checkpoint(path)
        received = self.received or signal.SIGTERM  # another process got it
        log.warning(
            "%s received: saved %s at step %d; resume with ckpt_path=%s",
            received.name, path, trainer.global_step, path.parent.parent,
        )
        raise Preempted(128 + received)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.teardown(trainer, pl_module, "fit")  # Lightning skips teardown when training stops with an exception


def checkpoint_dir(trainer: L.Trainer) -> Path:
    """Where the run's ModelCheckpoint writes (``<run dir>/checkpoints`` without one)."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            return Path(callback.dirpath)
    return Path(trainer.default_root_dir) / "checkpoints"
