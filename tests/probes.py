"""Callbacks that tests add through the config (``+callbacks.<name>._target_=tests.probes.<Class>``)."""

from __future__ import annotations

import os
import signal as signal_module
import time
from pathlib import Path

import lightning as L
import torch

from seglab.losses import CrossEntropyLoss


class ResumeProbe(L.Callback):
    """Records the global step and the optimizer's momentum buffers when training (re)starts."""

    seen: dict = {}

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        optimizer = trainer.optimizers[0]
        buffers = [optimizer.state[p]["momentum_buffer"].clone() for g in optimizer.param_groups for p in g["params"] if p in optimizer.state]
        ResumeProbe.seen = {
            "global_step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "lr": optimizer.param_groups[-1]["lr"],
            "momentum_buffers": buffers,
        }


def momentum_buffers(checkpoint: dict) -> list[torch.Tensor]:
    state = checkpoint["optimizer_states"][0]["state"]
    return [state[index]["momentum_buffer"] for index in sorted(state)]


class HangInSave(L.Callback):
    """Hangs inside the save of the checkpoint at ``step`` (while torch.save writes the file), after creating
    ``marker``: the test kills the process there."""

    def __init__(self, step: int, marker: str) -> None:
        self.step, self.marker = step, marker

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if trainer.global_step == self.step:
            checkpoint["hang"] = _HangWhenPickled(self.marker)


class _HangWhenPickled:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        Path(self.marker).touch()
        time.sleep(600)
        return (str, ("",))


class SendSignal(L.Callback):
    """Sends ``signal`` (a name, e.g. SIGTERM) to this process at the end of training step ``step``."""

    def __init__(self, signal: str, step: int) -> None:
        self.signal, self.step = signal, step

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), getattr(signal_module, self.signal))


class RaiseOutOfMemory(L.Callback):
    """Raises the error PyTorch raises when a GPU runs out of memory, at the first training batch."""

    def on_train_batch_start(self, *args) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.78 GiB total)")


class NaNLoss(CrossEntropyLoss):
    """Cross-entropy that returns NaN at the training calls numbered in ``nan_calls`` (1 = the first)."""

    def __init__(self, nan_calls: list[int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.nan_calls, self.calls = set(nan_calls), 0

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = super().forward(logits, target)
        if self.training:
            self.calls += 1
            if self.calls in self.nan_calls:
                return loss * float("nan")
        return loss
