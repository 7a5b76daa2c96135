"""DeepLab v1 LargeFOV head (Chen et al., 2015): one 3x3 atrous convolution at rate 12, then 1x1 convolutions."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from seglab.models.layers import ConvBNReLU


class LargeFOVDecoder(nn.Module):
    """``fc6``: 3x3 atrous conv (``channels``, rate ``rate``) + dropout; ``fc7``: 1x1 conv (``channels``).

    The segmentor's 1x1 classifier is ``fc8``. The paper's VGG head had no BatchNorm; it is added here so the
    head trains from scratch like the other decoders. The rate is used as given at every output stride.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        output_stride: int = 8,
        channels: int = 1024,
        rate: int = 12,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        self.fc6 = nn.Sequential(ConvBNReLU(encoder_channels[-1], channels, 3, dilation=rate), nn.Dropout2d(dropout))
        self.fc7 = ConvBNReLU(channels, channels, kernel_size=1)
        self.out_channels = channels

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.fc7(self.fc6(features[-1]))
