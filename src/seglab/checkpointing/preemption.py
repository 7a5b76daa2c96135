"""Stopping on a signal without losing work: SIGTERM, SIGUSR1 and Ctrl-C (SIGINT) save ``last.ckpt`` and stop, so
the run resumes where it was; a second Ctrl-C stops at once."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, Sequence

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from seglab.checkpointing.model_checkpoint import validation_follows
from seglab.runtime.run_dir import resume_command

log = logging.getLogger(__name__)


class Preempted(SystemExit):
    """Raised once the checkpoint is saved (or at a second Ctrl-C); the exit status is 128 + the signal number, as
    for a process killed by the signal, so shells and schedulers see how it ended (SIGINT: 130, SIGTERM: 143)."""


class PreemptionCheckpoint(L.Callback):
    """Saves ``<checkpoints>/last.ckpt`` and stops training when the process receives one of ``signals``.

    Clusters send SIGTERM (SLURM with ``--signal=USR1@<seconds>``: SIGUSR1) a while before they kill a job; a user
    presses Ctrl-C (SIGINT). The handler only notes the signal; the checkpoint is written at the end of the current
    training batch, where the state is consistent, and the run stops with :class:`Preempted` once that batch's
    metrics are logged, printing the command that resumes it. A validation pass in progress is finished first (its
    partial scores cannot be saved), and so is the batch before it (a run resumed there would skip it). A second
    Ctrl-C stops at once without saving. Under DDP the processes agree at every batch end, so they all stop at the
    same one. A signal that already has a handler of the program's own (Lightning's SLURM auto-requeue handles
    SIGUSR1 itself) is left to it, and so is an ignored SIGINT (a job started in the background).

    Args:
        signals: names of the signals that mean "save and stop".
    """

    def __init__(self, signals: Sequence[str] = ("SIGTERM", "SIGUSR1", "SIGINT")) -> None:
        self.signals = [signal.Signals[name] for name in signals]
        self.received: signal.Signals | None = None
        self.saved: Path | None = None
        self._previous: dict[signal.Signals, Any] = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # After Lightning's own SIGTERM handler is set (it would stop in the middle of a validation pass).
        if threading.current_thread() is not threading.main_thread():
            return
        self._run_dir, self._last = Path(trainer.default_root_dir), checkpoint_dir(trainer) / "last.ckpt"
        for signum in self.signals:
            current = signal.getsignal(signum)
            ours = current in (signal.SIG_DFL, None) or (
                signum == signal.SIGINT and (current is signal.default_int_handler or isinstance(current, StopAtOnce))
            )
            if signum != signal.SIGTERM and not ours:
                continue
            self._previous[signum] = current
            signal.signal(signum, self._note)

    def _note(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGINT and self.received == signal.SIGINT:
            StopAtOnce(self._run_dir, self._last, "Ctrl-C again: stopped at once without saving")()
        self.received = signal.Signals(signum)
        if signum == signal.SIGINT:
            log.warning("Ctrl-C: saving last.ckpt at the end of this batch, then stopping (Ctrl-C again: stop now)")

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._stop_if_saved(trainer)  # the previous batch's metrics are logged now

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.saved is None and self.received is not None:  # the signal came in the last validation pass
            self.saved = self._last
            trainer.save_checkpoint(self.saved)
        self._stop_if_saved(trainer)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        if self.saved is not None or validation_follows(trainer):
            return
        if not trainer.strategy.reduce_boolean_decision(self.received is not None, all=False):
            return
        self.saved = self._last
        trainer.save_checkpoint(self.saved)

    def _stop_if_saved(self, trainer: L.Trainer) -> None:
        if self.saved is None:
            return
        received = self.received or signal.SIGTERM  # another process got it
        name = "Ctrl-C" if received == signal.SIGINT else received.name
        if trainer.is_global_zero:
            log.warning(
                "%s: saved %s at step %d; resume with:\n  %s",
                name, self.saved, trainer.global_step, resume_command(self._run_dir),
            )
        raise Preempted(128 + received)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.teardown(trainer, pl_module, "fit")  # Lightning skips teardown when training stops with an exception


@contextlib.contextmanager
def ctrl_c_stops_at_once(run_dir: Path) -> Iterator[None]:
    """Outside training (setting up, the final validation) Ctrl-C stops at once with status 130 and, once the run
    has a checkpoint, the command that resumes it (instead of a KeyboardInterrupt traceback, or Lightning's status
    1). :class:`PreemptionCheckpoint` takes over while training runs."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield
        return
    previous = signal.signal(signal.SIGINT, StopAtOnce(run_dir, run_dir / "checkpoints" / "last.ckpt"))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class StopAtOnce:
    """A SIGINT handler that raises :class:`Preempted` (status 130) with ``message`` and the resume command."""

    def __init__(self, run_dir: Path, last: Path, message: str = "Ctrl-C: stopped") -> None:
        self.run_dir, self.last, self.message = run_dir, last, message

    def __call__(self, *signal_args: Any) -> None:
        message = self.message
        if self.last.is_file():
            message += f"; the last checkpoint is {self.last}, resume with:\n  {resume_command(self.run_dir)}"
        log.warning("%s", message)
        raise Preempted(128 + signal.SIGINT)


def checkpoint_dir(trainer: L.Trainer) -> Path:
    """Where the run's ModelCheckpoint writes (``<run dir>/checkpoints`` without one)."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath:
            return Path(callback.dirpath)
    return Path(trainer.default_root_dir) / "checkpoints"
