"""Small convolution blocks shared by the decoders."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BatchNorm2d(nn.BatchNorm2d):
    """BatchNorm that also trains on a map with one value per channel (a pooled 1x1 map at batch size 1).

    Batch statistics of a single value are undefined (plain BatchNorm raises); such a batch is normalised with
    the running statistics instead, which are left unchanged. Every other batch is ordinary BatchNorm.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.numel() == x.shape[1]:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class ConvBNReLU(nn.Sequential):
    """``kxk`` convolution (optionally atrous) followed by BatchNorm and ReLU; padding keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1) -> None:
        padding = dilation * (kernel_size // 2)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
            BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class SeparableConvBNReLU(nn.Sequential):
    """Depthwise-separable atrous convolution (DeepLabV3+): depthwise ``kxk`` + BN, pointwise 1x1 + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1) -> None:
        padding = dilation * (kernel_size // 2)
        super().__init__(
            nn.Conv2d(
                in_channels, in_channels, kernel_size, padding=padding, dilation=dilation, groups=in_channels, bias=False
            ),
            BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def conv3x3_bn_relu(in_channels: int, out_channels: int, dilation: int = 1, separable: bool = False) -> nn.Module:
    """A 3x3 (atrous) conv block, plain or depthwise-separable."""
    block = SeparableConvBNReLU if separable else ConvBNReLU
    return block(in_channels, out_channels, 3, dilation)


def classifier(in_channels: int, num_classes: int, dropout: float = 0.1) -> nn.Sequential:
    """Dropout then a 1x1 convolution to class logits (the last layer of every head)."""
    return nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(in_channels, num_classes, 1))


def upsample_like(x: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``x`` to the height and width of ``reference``."""
    return F.interpolate(x, size=reference.shape[-2:], mode="bilinear", align_corners=False)
