"""Softmax focal loss (Lin et al., 2017) for multiclass segmentation.

Written here rather than taken from segmentation-models-pytorch: smp's multiclass ``FocalLoss`` applies a
*sigmoid* focal loss to each channel (one class against the rest), so a confident, correct softmax prediction
(true logit 20, others 0) still costs about 0.13 because every other channel's sigmoid is 0.5; and a crop whose
pixels are all ignored gives NaN (the mean of an empty tensor).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from seglab.losses.base import PixelLoss, weighted_mean


class FocalLoss(PixelLoss):
    """``-(1 - p_t)^gamma * log(p_t)`` per labelled pixel, ``p_t`` the softmax probability of the true class.

    Easy pixels (``p_t`` near 1) are down-weighted so that training concentrates on hard ones; ``gamma=0`` is
    cross-entropy. Averaged over the labelled pixels; with class weights (the focal loss's per-class
    ``alpha``), the weighted mean, as :class:`~seglab.losses.CrossEntropyLoss` does.

    Args:
        ignore_index: target value that contributes neither loss nor gradient.
        class_weights: one weight per class, or ``None``.
        gamma: focusing parameter (2 in the paper).
    """

    def __init__(
        self, ignore_index: int = 255, class_weights: Sequence[float] | None = None, gamma: float = 2.0
    ) -> None:
        super().__init__(ignore_index, class_weights)
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted mean loss; ``weights`` (N, H, W), optional, multiply each pixel's weight."""
        target = target.long()
        weights = self.pixel_weights(target, weights)
        log_p = F.log_softmax(logits.float(), dim=1)
        log_pt = log_p.gather(1, torch.where(weights > 0, target, 0).unsqueeze(1)).squeeze(1)
        focal = -((1.0 - log_pt.exp()) ** self.gamma) * log_pt
        return weighted_mean(focal * weights, weights)
