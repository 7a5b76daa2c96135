"""What every seglab loss shares: the ignore index, optional per-class weights, a zero for all-ignored batches."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seglab.runtime.errors import UserError


class PixelLoss(nn.Module):
    """Base of the pixel losses written here (the smp ones take the same two arguments).

    Args:
        ignore_index: target value that contributes neither loss nor gradient.
        class_weights: one weight per class, or ``None``. Stored as a non-persistent buffer: it follows the
            module to its device and stays out of checkpoints (the run's config records it).
    """

    def __init__(self, ignore_index: int = 255, class_weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if isinstance(class_weights, str):
            raise UserError(
                f"class_weights={class_weights!r} reached a loss: it takes one number per class; 'auto' is turned "
                "into numbers by train() (seglab.losses.class_weights.resolve_auto_class_weights) before the loss is built"
            )
        self.ignore_index = ignore_index
        weight = None if class_weights is None else torch.as_tensor(list(class_weights), dtype=torch.float32)
        self.register_buffer("class_weights", weight, persistent=False)

    def pixel_weights(self, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The weight of each pixel's true class (1 without class weights), times the per-pixel ``weights`` when
        given (e.g. Panoptic-DeepLab's small-instance weights); 0 on ignored pixels."""
        valid = target != self.ignore_index
        if self.class_weights is None:
            class_weights = valid.float()
        else:
            class_weights = self.class_weights[torch.where(valid, target, 0)] * valid
        return class_weights if weights is None else class_weights * weights


def weighted_mean(losses: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum(losses) / sum(weights)``, where ``losses`` are already weighted; 0 (in the graph, no gradient) when
    no pixel carries weight, e.g. a crop that holds only ignored pixels (where PyTorch's mean gives NaN)."""
    return losses.sum() / weights.sum().clamp_min(torch.finfo(losses.dtype).tiny)


def zero_loss(logits: torch.Tensor) -> torch.Tensor:
    """A zero that stays in the graph: what a batch without a single labelled pixel costs (no gradient flows)."""
    return logits.sum() * 0.0
