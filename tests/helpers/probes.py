"""Callbacks that tests add through the config (``+callbacks.<name>._target_=tests.helpers.probes.<Class>``)."""

from __future__ import annotations

import os
import shutil
import signal as signal_module
import time
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint

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


class PrecisionProbe(L.Callback):
    """Records, during training, the dtype of the classifier's output, whether the first convolution gets
    channels-last images, and the dtype of the logits the loss receives and whether autocast is on there."""

    seen: dict = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        PrecisionProbe.seen = {}
        first_conv = next(m for m in pl_module.net.backbone.modules() if isinstance(m, torch.nn.Conv2d))

        def conv_input(module, args):
            if module.training:
                PrecisionProbe.seen["conv_input_channels_last"] = args[0].is_contiguous(memory_format=torch.channels_last)

        def classifier_output(module, args, output):
            if module.training:
                PrecisionProbe.seen["classifier_dtype"] = output.dtype

        def loss_input(module, args):
            if pl_module.training:
                logits = args[0]
                PrecisionProbe.seen["loss_logits_dtype"] = logits.dtype
                PrecisionProbe.seen["loss_autocast"] = torch.is_autocast_enabled(logits.device.type)

        first_conv.register_forward_pre_hook(conv_input)
        pl_module.net.classifier.register_forward_hook(classifier_output)
        pl_module.loss.register_forward_pre_hook(loss_input)


class EMAProbe(L.Callback):
    """Follows the classifier's weights: the raw ones after each optimizer step, an EMA of them computed here with
    ``decay``, and the weights the network holds at each validation (``(stage, epoch, weights)``)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.ema: torch.Tensor | None = None
        self.raw: torch.Tensor | None = None
        self.at_epoch_end: dict[int, dict[str, torch.Tensor]] = {}
        self.validated: list[tuple[str, int, torch.Tensor]] = []
        EMAProbe.instance = self

    @staticmethod
    def weights(pl_module: L.LightningModule) -> torch.Tensor:
        return pl_module.net.classifier[-1].weight.detach().clone()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.raw = self.weights(pl_module)
        self.ema = self.raw if self.ema is None else self.decay * self.ema + (1 - self.decay) * self.raw

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.at_epoch_end[trainer.current_epoch] = {"raw": self.raw, "ema": self.ema}

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0 and not trainer.sanity_checking:
            self.validated.append((trainer.state.fn.value, trainer.current_epoch, self.weights(pl_module)))


class GradientProbe(L.Callback):
    """Records the global gradient norm each time an optimizer step has just been taken."""

    norms: list = []

    def on_fit_start(self, trainer, pl_module) -> None:
        GradientProbe.norms = []
        self.step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step > self.step:
            self.step = trainer.global_step
            grads = [p.grad.detach().flatten() for p in pl_module.parameters() if p.grad is not None]
            GradientProbe.norms.append(float(torch.cat(grads).norm()))


# A torch.compile backend that records the graphs it is given and runs them as they are (no code generation).
COMPILED_GRAPHS: list = []


@torch._dynamo.register_backend(name="seglab_test_recorder")
def record_graphs(graph_module, example_inputs):
    COMPILED_GRAPHS.append(graph_module)
    return graph_module.forward


class Interrupt(Checkpoint):
    """Sends ``signal`` (a name: SIGKILL, SIGINT, SIGTERM) to this process ``times`` times at one point of a run:
    ``at="step:N"`` (end of training step N, after the checkpoints of that step), ``"epoch_end:E"`` (right after
    epoch E: its checkpoints and metrics are written, the next epoch has not started), ``"validation:E"`` (inside
    the validation at the end of epoch E) or ``"final_validation"`` (training finished, before the final
    validation of the best checkpoint).

    A ``Checkpoint`` subclass only so that Lightning runs its hooks after ModelCheckpoint's (it orders checkpoint
    callbacks last)."""

    def __init__(self, signal: str, at: str, times: int = 1) -> None:
        self.signal, self.times = getattr(signal_module, signal), times
        self.point, _, number = at.partition(":")
        self.number = int(number) if number else None

    def _send(self) -> None:
        for _ in range(self.times):
            os.kill(os.getpid(), self.signal)

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if self.point == "step" and trainer.global_step == self.number:
            self._send()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.point == "epoch_end" and trainer.current_epoch == self.number + 1:
            self._send()

    def on_validation_batch_end(self, trainer: L.Trainer, *args) -> None:
        fitting = trainer.state.fn == "fit" and not trainer.sanity_checking
        if self.point == "validation" and fitting and trainer.current_epoch == self.number:
            self._send()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.point == "final_validation" and trainer.state.fn == "validate":
            self._send()


class FillDisk(L.Callback):
    """After training step ``step``, fills the disk of ``path`` (another program writing there) but for ``left`` bytes."""

    def __init__(self, step: int, path: str, left: int = 4096) -> None:
        self.step, self.path, self.left = step, Path(path), left

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            free = shutil.disk_usage(self.path.parent).free
            self.path.write_bytes(b"\0" * max(free - self.left, 0))


class ValidationRecorder(L.Callback):
    """Keeps the predicted and the true label maps of the last validation epoch (a run's final ``validate``), so a
    test can recompute the logged mIoU from them (:func:`tests.helpers.metrics.recomputed_miou`)."""

    last: dict[str, list[torch.Tensor]] = {}

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        ValidationRecorder.last = {"predictions": [], "targets": []}

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # noqa: ANN001
        ValidationRecorder.last["predictions"].append(outputs["masks"]["prediction"].detach().cpu())
        ValidationRecorder.last["targets"].append(batch["mask"].detach().cpu())


class RunProgressProbe(L.Callback):
    """Records what a user would see mid-run: the progress bar's run text at the first training step, after the
    first step, during validation and at the end, and the run's log file (``<run dir>/train.log``) at the first step."""

    seen: dict = {}

    @staticmethod
    def _bar(trainer: L.Trainer):
        return trainer.progress_bar_callback

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == 0:
            log_file = Path(trainer.default_root_dir) / "train.log"
            RunProgressProbe.seen = {"first": self._bar(trainer).run_progress(), "log_at_start": log_file.read_text()}
        elif "mid" not in RunProgressProbe.seen:
            RunProgressProbe.seen["mid"] = self._bar(trainer).run_progress()

    def on_validation_batch_end(self, trainer: L.Trainer, *args, **kwargs) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            RunProgressProbe.seen.setdefault("validation", self._bar(trainer).run_progress())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        RunProgressProbe.seen["end"] = self._bar(trainer).run_progress()
        bar = self._bar(trainer)
        RunProgressProbe.seen["description"] = bar.progress.tasks[bar.train_progress_bar_id].description  # as shown
