"""Small convolution blocks shared by the decoders."""

from __future__ import annotations

from torch import nn


class ConvBNReLU(nn.Sequential):
    """``kxk`` convolution (optionally atrous) followed by BatchNorm and ReLU; padding keeps the spatial size."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, dilation: int = 1) -> None:
        padding = dilation * (kernel_size // 2)
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_channels),
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
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


def conv3x3_bn_relu(in_channels: int, out_channels: int, dilation: int = 1, separable: bool = False) -> nn.Module:
    """A 3x3 (atrous) conv block, plain or depthwise-separable."""
    block = SeparableConvBNReLU if separable else ConvBNReLU
    return block(in_channels, out_channels, 3, dilation)
