"""DeepLab v3+ decoder: ASPP context fused with stride-4 low-level features (Chen et al., 2018)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seglab.models.decoders.aspp import ASPP, default_aspp_rates
from seglab.models.layers import ConvBNReLU, conv3x3_bn_relu, upsample_like

STRIDE_4_LEVEL = 2  # index of the stride-4 features in an smp encoder's output (strides 1, 2, 4, 8, 16, 32)


class DeepLabV3PlusDecoder(nn.Module):
    """ASPP output upsampled to stride 4, concatenated with low-level features projected to 48 channels,
    refined by two 3x3 convolutions. Output at stride 4; the segmentor upsamples the logits to the input size.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        output_stride: int = 16,
        out_channels: int = 256,
        rates: Sequence[int] | None = None,
        low_level_channels: int = 48,
        separable: bool = False,
        aspp_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(
            encoder_channels[-1],
            out_channels,
            rates=rates if rates is not None else default_aspp_rates(output_stride),
            separable=separable,
            dropout=aspp_dropout,
        )
        self.low_level = ConvBNReLU(encoder_channels[STRIDE_4_LEVEL], low_level_channels, kernel_size=1)
        self.fuse = nn.Sequential(
            conv3x3_bn_relu(out_channels + low_level_channels, out_channels, separable=separable),
            conv3x3_bn_relu(out_channels, out_channels, separable=separable),
        )
        self.out_channels = out_channels

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        low_level = self.low_level(features[STRIDE_4_LEVEL])
        context = upsample_like(self.aspp(features[-1]), low_level)
        return self.fuse(torch.cat([context, low_level], dim=1))
