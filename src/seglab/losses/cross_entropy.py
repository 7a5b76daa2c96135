"""Pixel-wise cross-entropy with ignore index and optional class weights."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from seglab.losses.base import PixelLoss, weighted_mean


class CrossEntropyLoss(PixelLoss):
    """Cross-entropy over pixels whose target is not ``ignore_index``; with class weights, the weighted mean.

    Args:
        ignore_index: target value that contributes neither loss nor gradient.
        class_weights: one weight per class (a list from config), or ``None``.
        label_smoothing: as in :func:`torch.nn.functional.cross_entropy`.
    """

    def __init__(
        self, ignore_index: int = 255, class_weights: Sequence[float] | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__(ignore_index, class_weights)
        self.label_smoothing = label_smoothing

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The (weighted) loss of every pixel, (N, H, W); 0 on ignored pixels."""
        return F.cross_entropy(
            logits.float(),
            target.long(),
            weight=self.class_weights,
            ignore_index=self.ignore_index,
            label_smoothing=self.label_smoothing,
            reduction="none",
        )

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted mean loss; ``weights`` (N, H, W), optional, multiply each pixel's weight."""
        losses = self.pixel_losses(logits, target)
        if weights is not None:
            losses = losses * weights
        return weighted_mean(losses, self.pixel_weights(target, weights))
