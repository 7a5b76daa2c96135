"""A non-finite training loss stops the run at once (or, with ``trainer.skip_nonfinite=true``, skips the batch)."""

from __future__ import annotations

import functools
import logging
from typing import Any, Mapping

import lightning as L
import torch

from seglab.checkpointing.preemption import checkpoint_dir
from seglab.runtime.errors import UserError
from seglab.runtime.write_targets import last_good_checkpoint

log = logging.getLogger(__name__)


class NonFiniteLossGuard(L.Callback):
    """Checks the loss each training step returns, before the backward pass and the optimizer step.

    A NaN or infinite loss stops training with a :class:`UserError` naming the step and the last good checkpoint
    (the weights were not updated by that step). With ``skip`` the step returns no loss instead, which Lightning
    treats as a skipped batch (no backward pass, no optimizer step; the learning-rate schedule moves on); skips are
    counted in ``train/skipped_batches`` and logged. Under DDP the processes agree, so they stop or skip together.

    Args:
        skip: skip such batches instead of stopping.
    """

    def __init__(self, skip: bool = False) -> None:
        self.skip = skip
        self.skipped = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if self.skip and trainer.world_size > 1:
            raise UserError(
                "trainer.skip_nonfinite=true skips batches on one process only (under DDP every process must run "
                "the backward pass); use trainer.skip_nonfinite=false, which stops at the first non-finite loss"
            )
        if "training_step" not in vars(pl_module):
            step = pl_module.training_step

            @functools.wraps(step)
            def guarded_training_step(*args: Any, **kwargs: Any) -> Any:
                return self.check(trainer, pl_module, step(*args, **kwargs))

            pl_module.training_step = guarded_training_step

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        vars(pl_module).pop("training_step", None)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.teardown(trainer, pl_module, "fit")  # Lightning skips teardown when training stops with an exception

    def check(self, trainer: L.Trainer, pl_module: L.LightningModule, output: Any) -> Any:
        """``output`` when its loss is finite; ``None`` (skip) or a :class:`UserError` otherwise."""
        loss = output.get("loss") if isinstance(output, Mapping) else output
        if not isinstance(loss, torch.Tensor):
            return output
        finite = trainer.strategy.reduce_boolean_decision(bool(torch.isfinite(loss.detach()).all()), all=True)
        if finite:
            return output
        where = f"global step {trainer.global_step} (epoch {trainer.current_epoch}, batch {trainer.fit_loop.batch_idx})"
        if not self.skip:
            raise UserError(
                f"the training loss is {loss.item()} at {where}; training stopped before that step changed the "
                f"weights. Last good checkpoint: {last_checkpoint(trainer)}. Lower optimizer.lr or check the data, "
                "or set trainer.skip_nonfinite=true to skip such batches"
            )
        self.skipped += 1
        log.warning("Skipped the batch at %s: the training loss is %s (%d skipped so far)", where, loss.item(), self.skipped)
        pl_module.log("train/skipped_batches", float(self.skipped), on_step=True, on_epoch=False)
        return None

    def state_dict(self) -> dict[str, int]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.skipped = state_dict["skipped"]


def last_checkpoint(trainer: L.Trainer) -> str:
    """The newest checkpoint the run can resume from (the one it resumed from included), for messages."""
    return last_good_checkpoint(checkpoint_dir(trainer), trainer.ckpt_path)
