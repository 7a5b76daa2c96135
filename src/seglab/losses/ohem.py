"""Online hard example mining (OHEM) cross-entropy: the loss of the hardest labelled pixels only."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from seglab.losses.base import weighted_mean, zero_loss
from seglab.losses.cross_entropy import CrossEntropyLoss
from seglab.runtime.errors import UserError


class OhemCrossEntropyLoss(CrossEntropyLoss):
    """Cross-entropy averaged over the hardest pixels of the batch, in one of two forms.

    - Threshold form (PSPNet / OCRNet on Cityscapes): keep the pixels whose probability of their true class is
      below ``thresh``, and at least the ``min_kept`` hardest ones (all labelled pixels when there are fewer).
    - Top-k form (Panoptic-DeepLab): keep the hardest ``top_k_percent`` of the labelled pixels
      (``ceil(top_k_percent * n)`` of ``n``).

    Hardness is the probability of the true class (lower is harder), whatever the class weights; the kept
    pixels' losses are then averaged as :class:`CrossEntropyLoss` averages (weighted mean with class weights).
    Ignored pixels are never kept. Set exactly one of ``thresh`` and ``top_k_percent``.

    Args:
        ignore_index, class_weights, label_smoothing: as in :class:`CrossEntropyLoss`.
        thresh: probability below which a pixel is hard (threshold form), or ``None``.
        min_kept: the threshold form keeps at least this many pixels per batch.
        top_k_percent: fraction of the labelled pixels to keep (top-k form), or ``None``.
    """

    def __init__(
        self,
        ignore_index: int = 255,
        class_weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        thresh: float | None = 0.7,
        min_kept: int = 100_000,
        top_k_percent: float | None = None,
    ) -> None:
        super().__init__(ignore_index, class_weights, label_smoothing)
        if (thresh is None) == (top_k_percent is None):
            raise UserError(
                f"loss.thresh={thresh} and loss.top_k_percent={top_k_percent}: set exactly one, thresh for the "
                "threshold form (with loss.min_kept) or top_k_percent for the top-k form (e.g. loss.thresh=null "
                "loss.top_k_percent=0.2)"
            )
        if thresh is not None and not 0.0 < thresh <= 1.0:
            raise UserError(f"loss.thresh={thresh} is not a probability in (0, 1]")
        if top_k_percent is not None and not 0.0 < top_k_percent <= 1.0:
            raise UserError(f"loss.top_k_percent={top_k_percent} is not a fraction in (0, 1] (0.2 keeps 20%)")
        if min_kept < 0:
            raise UserError(f"loss.min_kept={min_kept} must be 0 or more")
        self.thresh = thresh
        self.min_kept = int(min_kept)
        self.top_k_percent = top_k_percent

    def num_kept(self, true_class_probs: torch.Tensor) -> int:
        """How many of the labelled pixels with these probabilities of their true class are kept."""
        num_valid = true_class_probs.numel()
        if self.top_k_percent is not None:
            return math.ceil(self.top_k_percent * num_valid)
        num_hard = int((true_class_probs < self.thresh).sum())
        return max(num_hard, min(self.min_kept, num_valid))

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        """The weighted mean loss of the hardest pixels; ``weights`` (N, H, W), optional, multiply the kept
        pixels' weights (hardness itself is unweighted)."""
        target = target.long()
        valid = target != self.ignore_index
        if not valid.any():
            return zero_loss(logits)
        with torch.no_grad():
            nll = F.cross_entropy(logits.float(), torch.where(valid, target, 0), reduction="none")[valid]
            hardest = nll.topk(self.num_kept(torch.exp(-nll)), sorted=False).indices
        losses = self.pixel_losses(logits, target)
        if weights is not None:
            losses = losses * weights
        return weighted_mean(losses[valid][hardest], self.pixel_weights(target, weights)[valid][hardest])
