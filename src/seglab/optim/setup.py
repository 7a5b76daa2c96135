"""The optimizer and per-iteration schedule every seglab LightningModule returns from ``configure_optimizers``."""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable

import torch
from torch import nn

from seglab.runtime.errors import UserError

# The parameter groups every task's optimizer holds, in order: the backbone's and the rest of the model's.
GROUP_NAMES = ("backbone", "head")


def group_learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """``{"backbone": ..., "head": ...}``: the learning rate of every parameter group, by its ``name`` (a checkpoint
    written before groups had names restores them nameless: named by position then)."""
    names = [group.get("name", GROUP_NAMES[i] if i < len(GROUP_NAMES) else str(i)) for i, group in enumerate(optimizer.param_groups)]
    return {name: float(group["lr"]) for name, group in zip(names, optimizer.param_groups)}


def learning_rates(optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """``{"train/lr/backbone": ..., "train/lr/head": ...}``, as the tasks log them."""
    return {f"train/lr/{name}": lr for name, lr in group_learning_rates(optimizer).items()}


def optimizers_with_backbone_group(
    module: nn.Module,
    backbone_parameters: Iterable[nn.Parameter],
    optimizer_factory: Callable[..., torch.optim.Optimizer],
    scheduler_factory: Callable[..., Any] | None,
    backbone_lr_mult: float,
    max_steps: int | float,
) -> dict[str, Any]:
    """Two parameter groups, the backbone's (learning rate x ``backbone_lr_mult``) and the rest of ``module``'s;
    the scheduler, when there is one, is called as ``scheduler_factory(optimizer, max_steps=...)`` and stepped
    every iteration."""
    backbone = list(backbone_parameters)
    backbone_ids = {id(p) for p in backbone}
    rest = [p for p in module.parameters() if id(p) not in backbone_ids]
    optimizer = optimizer_factory([{"params": backbone, "name": GROUP_NAMES[0]}, {"params": rest, "name": GROUP_NAMES[1]}])
    optimizer.param_groups[0]["lr"] *= backbone_lr_mult
    if scheduler_factory is None:
        return {"optimizer": optimizer}
    if math.isinf(max_steps):
        raise UserError(
            "the learning-rate schedule needs the run's length, but trainer.max_epochs=-1 with "
            "trainer.max_steps=-1 trains without end: set trainer.max_steps (e.g. 80000) or trainer.max_epochs"
        )
    if max_steps < 1:
        raise UserError(
            "the run has no training step (trainer.limit_train_batches leaves no batch of the training split), so "
            "the learning-rate schedule has nothing to run over; raise trainer.limit_train_batches or leave it out"
        )
    scheduler = scheduler_factory(optimizer, max_steps=max_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
