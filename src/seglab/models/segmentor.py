"""Segmentor: encoder -> decoder -> 1x1 classifier, logits upsampled to the input size."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class Segmentor(nn.Module):
    """A semantic segmentation network assembled from parts.

    Args:
        backbone: an encoder returning one feature map per stride level, with ``out_channels`` and
            ``output_stride`` attributes (see :func:`seglab.models.build_backbone`).
        decoder: a factory called as ``decoder(encoder_channels=..., output_stride=...)`` returning a module
            with ``out_channels`` (a ``functools.partial`` of a decoder class, as Hydra's ``_partial_`` gives).
        num_classes: number of output classes.
        dropout: dropout before the classifier.
    """

    def __init__(
        self, backbone: nn.Module, decoder: Callable[..., nn.Module], num_classes: int, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder(encoder_channels=list(backbone.out_channels), output_stride=backbone.output_stride)
        self.classifier = nn.Sequential(nn.Dropout2d(dropout), nn.Conv2d(self.decoder.out_channels, num_classes, 1))
        self.num_classes = num_classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return float32 class logits of shape ``(N, num_classes, H, W)`` for images ``(N, 3, H, W)``."""
        logits = self.classifier(self.decoder(self.backbone(images)))
        # Upsample in float32 even under mixed precision: the loss and the argmax see full-precision logits.
        return F.interpolate(logits.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)
