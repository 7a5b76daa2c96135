"""Pyramid pooling as a segmentation context module: PSPNet's PPM and the SPPNet pyramid used densely."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seglab.models.decoders.spp import SPP
from seglab.models.layers import ConvBNReLU, upsample_like


class PyramidPoolingDecoder(nn.Module):
    """Pool the deepest features over a pyramid of bins, reduce each level by a 1x1 conv, upsample the levels
    back, concatenate them with the features and fuse with a 3x3 conv (Zhao et al., 2017).

    PSPNet's module is ``levels=(1, 2, 3, 6), pool="avg"``; SPPNet's pyramid is ``levels=(4, 2, 1), pool="max"``.
    Each level is reduced to ``in_channels / len(levels)`` channels, as in the paper.

    Args:
        encoder_channels: channels per stride level of the encoder.
        output_stride: the encoder's output stride (the module works at any).
        levels: bins per side of each pyramid level.
        pool: ``"avg"`` or ``"max"``.
        out_channels: channels of the fusing 3x3 conv.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        output_stride: int = 8,
        levels: Sequence[int] = (1, 2, 3, 6),
        pool: str = "avg",
        out_channels: int = 512,
    ) -> None:
        super().__init__()
        in_channels = encoder_channels[-1]
        self.spp = SPP(levels, pool)
        level_channels = max(in_channels // len(self.spp.levels), 1)
        self.reduce = nn.ModuleList(ConvBNReLU(in_channels, level_channels, 1) for _ in self.spp.levels)
        self.fuse = ConvBNReLU(in_channels + level_channels * len(self.spp.levels), out_channels)
        self.out_channels = out_channels

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        levels = [upsample_like(reduce(pooled), x) for reduce, pooled in zip(self.reduce, self.spp.pyramid(x))]
        return self.fuse(torch.cat([x, *levels], dim=1))
