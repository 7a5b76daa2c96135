"""Segmentor: encoder -> decoder -> 1x1 classifier, logits upsampled to the input size."""

from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import nn

from seglab.models.decoders.fcn import STRIDE_16_LEVEL, FCNDecoder
from seglab.models.layers import classifier, upsample_like


class Segmentor(nn.Module):
    """A semantic segmentation network assembled from parts.

    Args:
        backbone: an encoder returning one feature map per stride level, with ``out_channels`` and
            ``output_stride`` attributes (see :func:`seglab.models.build_backbone`).
        decoder: a factory called as ``decoder(encoder_channels=..., output_stride=...)`` returning a module
            with ``out_channels`` (a ``functools.partial`` of a decoder class, as Hydra's ``_partial_`` gives).
            A factory that takes ``num_classes`` gets it and must return class logits; no classifier is added.
        num_classes: number of output classes.
        dropout: dropout before the classifier.
        aux_head: add an auxiliary FCN head on the stride-16 stage (PSPNet, torchvision's DeepLab), used by
            :meth:`forward_with_aux` during training only.
    """

    def __init__(
        self,
        backbone: nn.Module,
        decoder: Callable[..., nn.Module],
        num_classes: int,
        dropout: float = 0.1,
        aux_head: bool = False,
    ) -> None:
        super().__init__()
        channels = list(backbone.out_channels)
        decoder_kwargs = {"encoder_channels": channels, "output_stride": backbone.output_stride}
        decoder_makes_logits = "num_classes" in inspect.signature(decoder).parameters
        if decoder_makes_logits:
            decoder_kwargs["num_classes"] = num_classes
        self.backbone = backbone
        self.decoder = decoder(**decoder_kwargs)
        self.classifier = (
            nn.Identity() if decoder_makes_logits else classifier(self.decoder.out_channels, num_classes, dropout)
        )
        self.aux_head = None
        if aux_head:
            aux_decoder = FCNDecoder(channels, backbone.output_stride, level=STRIDE_16_LEVEL)
            self.aux_head = nn.Sequential(aux_decoder, classifier(aux_decoder.out_channels, num_classes))
        self.num_classes = num_classes

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Return float32 class logits of shape ``(N, num_classes, H, W)`` for images ``(N, 3, H, W)``."""
        return self._logits(self.backbone(images), images)

    def forward_with_aux(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logits of :meth:`forward` and those of the auxiliary head (``None`` without one)."""
        features = self.backbone(images)
        aux = None if self.aux_head is None else upsample_like(self.aux_head(features).float(), images)
        return self._logits(features, images), aux

    def _logits(self, features: list[torch.Tensor], images: torch.Tensor) -> torch.Tensor:
        # Upsample in float32 even under mixed precision: the loss and the argmax see full-precision logits.
        return upsample_like(self.classifier(self.decoder(features)).float(), images)
