"""Callbacks that tests add through the config (``+callbacks.<name>._target_=tests.probes.<Class>``)."""

from __future__ import annotations

import lightning as L
import torch


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
