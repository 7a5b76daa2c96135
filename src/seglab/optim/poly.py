"""The "poly" learning-rate policy of DeepLab, stepped per iteration, with optional linear warm-up."""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler


class PolyLR(LRScheduler):
    """``lr = base_lr * (1 - step / max_steps) ** power``, floored at ``min_lr``.

    During the first ``warmup_steps`` steps the factor ramps linearly from ``warmup_ratio`` to 1.
    Call :meth:`step` once per optimizer step.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_steps: int,
        power: float = 0.9,
        min_lr: float = 0.0,
        warmup_steps: int = 0,
        warmup_ratio: float = 0.1,
        last_epoch: int = -1,
    ) -> None:
        if max_steps <= 0:
            raise ValueError(f"PolyLR needs max_steps > 0, got {max_steps}")
        self.max_steps = int(max_steps)
        self.power = power
        self.min_lr = min_lr
        self.warmup_steps = int(warmup_steps)
        self.warmup_ratio = warmup_ratio
        super().__init__(optimizer, last_epoch)

    def factor(self, step: int) -> float:
        progress = min(step, self.max_steps) / self.max_steps
        factor = (1.0 - progress) ** self.power
        if step < self.warmup_steps:
            factor *= self.warmup_ratio + (1.0 - self.warmup_ratio) * step / self.warmup_steps
        return factor

    def get_lr(self) -> list[float]:
        factor = self.factor(self.last_epoch)
        return [max(base_lr * factor, self.min_lr) for base_lr in self.base_lrs]
