"""Atrous Spatial Pyramid Pooling (DeepLab v3).

Parallel branches look at the same feature map with different fields of view: a 1x1 convolution, 3x3 atrous
convolutions at several rates, and an image-level branch (global average pooling). Their outputs are
concatenated and projected back to ``out_channels``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seglab.models.layers import ConvBNReLU, conv3x3_bn_relu, upsample_like
from seglab.runtime.errors import UserError


def default_aspp_rates(output_stride: int) -> tuple[int, ...]:
    """DeepLab v3's rates: (6, 12, 18) at output stride 16, doubled at 8, halved at 32."""
    return tuple(rate * 16 // output_stride for rate in (6, 12, 18))


def check_rates(rates: Sequence[int], name: str = "rates") -> tuple[int, ...]:
    """``rates`` as a tuple of ints; a :class:`UserError` naming ``name`` unless it is a non-empty list of
    positive integers."""
    try:
        checked = tuple(int(rate) for rate in rates)
    except (TypeError, ValueError):
        checked = ()
    if not checked or any(rate <= 0 or rate != given for rate, given in zip(checked, rates)):
        raise UserError(f"{name}={rates}: atrous rates must be a non-empty list of positive integers")
    return checked


class ImagePooling(nn.Module):
    """Image-level features: global average pool, 1x1 conv + BN + ReLU, upsampled back to the input size.

    The pooled map has one value per channel, so a batch of one trains with the running BatchNorm statistics
    (see :class:`seglab.models.layers.BatchNorm2d`) instead of failing.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample_like(self.conv(F.adaptive_avg_pool2d(x, 1)), x)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling; returns a map with the input's height and width.

    Args:
        in_channels: channels of the input feature map.
        out_channels: channels of every branch and of the projected output.
        rates: dilation rates of the 3x3 atrous branches.
        image_pooling: add the image-level (global average pooling) branch.
        separable: use depthwise-separable atrous convolutions (DeepLabV3+).
        dropout: dropout after the projection.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int = 256,
        rates: Sequence[int] = (6, 12, 18),
        image_pooling: bool = True,
        separable: bool = False,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        rates = check_rates(rates)
        branches: list[nn.Module] = [ConvBNReLU(in_channels, out_channels, kernel_size=1)]
        branches += [conv3x3_bn_relu(in_channels, out_channels, rate, separable) for rate in rates]
        if image_pooling:
            branches.append(ImagePooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(
            ConvBNReLU(len(branches) * out_channels, out_channels, kernel_size=1),
            nn.Dropout(dropout),
        )
        self.rates = rates
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))
