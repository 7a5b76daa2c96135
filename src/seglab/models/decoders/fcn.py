"""Plain FCN head (Long et al., 2015, as in torchvision's FCNHead): the baseline decoder and the auxiliary head."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seglab.models.layers import ConvBNReLU

STRIDE_16_LEVEL = 4  # index of the stride-16 stage in an smp encoder's output (strides 1, 2, 4, 8, 16, 32)


class FCNDecoder(nn.Module):
    """One 3x3 conv + BN + ReLU on one encoder level (the deepest by default), to a quarter of its channels.

    Args:
        encoder_channels: channels per stride level of the encoder.
        output_stride: the encoder's output stride (unused: the head keeps the features' resolution).
        out_channels: channels of the 3x3 conv; ``None`` is a quarter of the input channels (torchvision's).
        level: which encoder feature map to read, e.g. :data:`STRIDE_16_LEVEL` for an auxiliary head.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        output_stride: int = 32,
        out_channels: int | None = None,
        level: int = -1,
    ) -> None:
        super().__init__()
        in_channels = encoder_channels[level]
        self.out_channels = out_channels or max(in_channels // 4, 1)
        self.conv = ConvBNReLU(in_channels, self.out_channels)
        self.level = level

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.conv(features[self.level])
