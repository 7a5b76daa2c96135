"""DeepLab v2 ASPP (Chen et al., 2017): parallel 3x3 atrous classifiers whose class logits are summed."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seglab.models.decoders.aspp import check_rates


class ASPPV2Decoder(nn.Module):
    """One 3x3 atrous convolution per rate straight to ``num_classes`` logits; the branches are summed.

    This decoder produces class logits itself (it takes ``num_classes``), so the segmentor adds no classifier.
    The default rates (6, 12, 18, 24) are the paper's ASPP-L at output stride 8; they are used as given.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        output_stride: int = 8,
        *,
        num_classes: int,
        rates: Sequence[int] = (6, 12, 18, 24),
    ) -> None:
        super().__init__()
        self.rates = check_rates(rates)
        self.branches = nn.ModuleList(
            nn.Conv2d(encoder_channels[-1], num_classes, 3, padding=rate, dilation=rate) for rate in self.rates
        )
        self.out_channels = num_classes

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        return torch.stack([branch(x) for branch in self.branches]).sum(dim=0)
