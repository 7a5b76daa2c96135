"""Panoptic-DeepLab (Cheng et al., 2020): one backbone, a semantic branch and a class-agnostic instance branch.

Each branch has its own ASPP + DeepLabV3+-style decoder (any seglab decoder factory fits); the semantic head
predicts class logits, the instance heads a centre heatmap and per-pixel offsets to the instance centres. Each
head is the paper's 5x5 depthwise-separable convolution followed by a 1x1 convolution. All outputs come back at
the input resolution, offsets in input pixels.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from seglab.models.layers import SeparableConvBNReLU, upsample_like


class PredictionHead(nn.Sequential):
    """5x5 depthwise-separable conv + BN + ReLU to ``hidden_channels``, then a 1x1 conv to ``out_channels``."""

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int) -> None:
        super().__init__(SeparableConvBNReLU(in_channels, hidden_channels, kernel_size=5), nn.Conv2d(hidden_channels, out_channels, 1))


class PanopticDeepLab(nn.Module):
    """The Panoptic-DeepLab network.

    Args:
        backbone: an encoder with ``out_channels`` and ``output_stride`` (see :func:`seglab.models.build_backbone`).
        decoder: the semantic branch's decoder factory, called as ``decoder(encoder_channels=...,
            output_stride=...)`` (e.g. a partial of :class:`~seglab.models.decoders.DeepLabV3PlusDecoder`).
        instance_decoder: the instance branch's decoder factory (the paper: 128 channels).
        num_classes: number of semantic classes.
        head_channels: hidden channels of the semantic head (the paper: 256).
        instance_head_channels: hidden channels of the centre and offset heads (the paper: 32).
    """

    def __init__(
        self,
        backbone: nn.Module,
        decoder: Callable[..., nn.Module],
        instance_decoder: Callable[..., nn.Module],
        num_classes: int,
        head_channels: int = 256,
        instance_head_channels: int = 32,
    ) -> None:
        super().__init__()
        branch_kwargs = {"encoder_channels": list(backbone.out_channels), "output_stride": backbone.output_stride}
        self.backbone = backbone
        self.decoder = decoder(**branch_kwargs)
        self.instance_decoder = instance_decoder(**branch_kwargs)
        self.semantic_head = PredictionHead(self.decoder.out_channels, head_channels, num_classes)
        self.center_head = PredictionHead(self.instance_decoder.out_channels, instance_head_channels, 1)
        self.offset_head = PredictionHead(self.instance_decoder.out_channels, instance_head_channels, 2)
        self.num_classes = num_classes

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """For images (N, 3, H, W): float32 ``semantic`` logits (N, C, H, W), ``center`` heatmap (N, 1, H, W) and
        ``offsets`` (N, 2, H, W) as (dy, dx) in input pixels."""
        features = self.backbone(images)
        semantic = self.semantic_head(self.decoder(features))
        instance = self.instance_decoder(features)
        center = self.center_head(instance)
        offsets = self.offset_head(instance).float()
        scale = torch.tensor([images.shape[-2] / offsets.shape[-2], images.shape[-1] / offsets.shape[-1]], device=offsets.device)
        return {
            "semantic": upsample_like(semantic.float(), images),
            "center": upsample_like(center.float(), images),
            "offsets": upsample_like(offsets, images) * scale.view(1, 2, 1, 1),  # head units are its own pixels
        }
