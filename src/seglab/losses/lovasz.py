"""Lovasz-softmax loss (Berman et al., 2018): a convex surrogate of each class's Jaccard loss, i.e. of mIoU.

Written here rather than taken from segmentation-models-pytorch: smp's multiclass ``LovaszLoss`` returns an
empty (0, C) tensor instead of a scalar when every pixel is ignored (and with ``per_image=True`` one
all-ignored image turns the whole batch's loss into that empty tensor), and it has no class weights.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from seglab.losses.base import PixelLoss, zero_loss
from seglab.runtime.errors import UserError


def lovasz_gradient(foreground_sorted: torch.Tensor) -> torch.Tensor:
    """Gradient of the Lovasz extension of the Jaccard loss at errors sorted in decreasing order (Alg. 1 of
    the paper), for each column: ``foreground_sorted`` is (P, C), 1 where the sorted pixel belongs to the class."""
    total = foreground_sorted.sum(dim=0)
    intersection = total - foreground_sorted.cumsum(dim=0)
    union = total + (1.0 - foreground_sorted).cumsum(dim=0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])


class LovaszSoftmaxLoss(PixelLoss):
    """Mean over classes of the Lovasz extension of ``1 - IoU`` applied to the softmax errors of the labelled pixels.

    Args:
        ignore_index: target value that contributes neither loss nor gradient.
        class_weights: one weight per class for the mean over classes, or ``None`` (plain mean).
        classes: ``present`` averages over the classes present in the labels (the paper's default), ``all``
            over every class (an absent class then costs its largest predicted probability).
        per_image: compute the loss per image and average (images without labelled pixels are skipped),
            instead of over the whole batch at once.
    """

    def __init__(
        self,
        ignore_index: int = 255,
        class_weights: Sequence[float] | None = None,
        classes: str = "present",
        per_image: bool = False,
    ) -> None:
        super().__init__(ignore_index, class_weights)
        if classes not in ("present", "all"):
            raise UserError(f"loss.classes={classes!r}: use present or all")
        self.classes = classes
        self.per_image = per_image

    def _flat_loss(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor | None:
        """Loss of labelled pixels ``probs`` (P, C) with ``labels`` (P,); ``None`` when no class counts."""
        foreground = F.one_hot(labels, probs.shape[1]).to(probs.dtype)
        errors = (foreground - probs).abs()
        errors_sorted, order = errors.sort(dim=0, descending=True)
        per_class = (errors_sorted * lovasz_gradient(foreground.gather(0, order))).sum(dim=0)
        weights = (foreground.sum(dim=0) > 0).to(probs.dtype) if self.classes == "present" else torch.ones_like(per_class)
        if self.class_weights is not None:
            weights = weights * self.class_weights
        if not weights.any():
            return None
        return (per_class * weights).sum() / weights.sum()

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        probs = logits.float().softmax(dim=1).movedim(1, -1)  # (N, H, W, C)
        target = target.long()
        groups = zip(probs, target) if self.per_image else [(probs, target)]
        losses = []
        for group_probs, group_target in groups:
            valid = group_target != self.ignore_index
            if valid.any():
                loss = self._flat_loss(group_probs[valid], group_target[valid])
                if loss is not None:
                    losses.append(loss)
        return torch.stack(losses).mean() if losses else zero_loss(logits)
