"""Any segmentation-models-pytorch architecture (Unet, FPN, PAN, UPerNet, ...) as a seglab decoder."""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import segmentation_models_pytorch as smp
import torch
from torch import nn

from seglab.runtime.errors import UserError


class SMPDecoder(nn.Module):
    """The decoder and segmentation head of an smp architecture, fed by the seglab backbone.

    smp builds a whole model (its own encoder included); only its decoder and head are kept, so the backbone
    config (weights, output stride, multi-grid) still applies. This decoder produces class logits itself.

    Args:
        encoder_channels: channels per stride level of the seglab backbone.
        output_stride: the backbone's output stride; passed to architectures that take
            ``encoder_output_stride`` (DeepLabV3, DeepLabV3Plus, PAN), the others need 32.
        num_classes: number of classes.
        arch: smp architecture name, e.g. ``Unet``, ``FPN`` (case does not matter).
        encoder_name: the backbone's smp encoder name (the config fills in ``model.backbone.name``).
        **arch_kwargs: further arguments of the architecture, e.g. ``decoder_channels``.
    """

    def __init__(
        self,
        encoder_channels: Sequence[int],
        output_stride: int = 32,
        *,
        num_classes: int,
        arch: str = "Unet",
        encoder_name: str = "resnet34",
        **arch_kwargs: Any,
    ) -> None:
        super().__init__()
        architecture = smp.MODEL_ARCHITECTURES_MAPPING.get(arch.lower())
        if architecture is None:
            names = sorted(a.__name__ for a in smp.MODEL_ARCHITECTURES_MAPPING.values())
            raise UserError(f"model.decoder.arch={arch!r} is not a segmentation-models-pytorch architecture; use one of {names}")
        kwargs = dict(encoder_name=encoder_name, encoder_weights=None, encoder_depth=5, classes=num_classes)
        if "encoder_output_stride" in inspect.signature(architecture).parameters:
            kwargs["encoder_output_stride"] = output_stride
        elif output_stride != 32:
            raise UserError(
                f"smp {architecture.__name__} has no atrous option: set model.backbone.output_stride=32 "
                f"(got {output_stride}), or pick DeepLabV3, DeepLabV3Plus or PAN"
            )
        try:
            model = architecture(**kwargs, **arch_kwargs)
        except (ValueError, TypeError) as err:
            raise UserError(f"smp {architecture.__name__} on {encoder_name} at output stride {output_stride}: {err}") from None
        if list(model.encoder.out_channels) != list(encoder_channels):
            raise UserError(
                f"model.decoder.encoder_name={encoder_name!r} gives channels {list(model.encoder.out_channels)}, the "
                f"backbone gives {list(encoder_channels)}; leave model.decoder.encoder_name at ${{model.backbone.name}}"
            )
        self.decoder = model.decoder
        self.head = model.segmentation_head
        self.arch = architecture.__name__
        self.out_channels = num_classes

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.head(self.decoder(features))
