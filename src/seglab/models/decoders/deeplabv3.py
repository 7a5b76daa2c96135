"""DeepLab v3 decoder: ASPP on the deepest features, then a 3x3 convolution (as in torchvision's DeepLabHead)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seglab.models.decoders.aspp import ASPP, default_aspp_rates
from seglab.models.layers import ConvBNReLU


class DeepLabV3Decoder(nn.Module):
    """ASPP + 3x3 conv on the encoder's last feature map; output at the encoder's output stride.

    ``rates=None`` picks DeepLab v3's rates for the output stride (6, 12, 18 at 16; 12, 24, 36 at 8).
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        output_stride: int = 16,
        out_channels: int = 256,
        rates: Sequence[int] | None = None,
        image_pooling: bool = True,
        separable: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.aspp = ASPP(
            encoder_channels[-1],
            out_channels,
            rates=rates if rates is not None else default_aspp_rates(output_stride),
            image_pooling=image_pooling,
            separable=separable,
            dropout=dropout,
        )
        self.conv = ConvBNReLU(out_channels, out_channels)
        self.out_channels = out_channels

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.conv(self.aspp(features[-1]))
