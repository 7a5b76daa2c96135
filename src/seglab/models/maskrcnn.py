"""Mask R-CNN (He et al., 2017) on any seglab backbone: torchvision's detector with an FPN over our encoder.

torchvision builds its Mask R-CNN on its own ResNets; here the feature pyramid (torchvision's
``FeaturePyramidNetwork`` plus a max-pooled P6) sits on the stride 4, 8, 16 and 32 features of whatever
:func:`seglab.models.build_backbone` returns (ResNets, MobileNetV2, EfficientNet, timm models).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from seglab.runtime.errors import UserError

FPN_LEVELS = (2, 3, 4, 5)  # the stride 4, 8, 16 and 32 features in an smp encoder's output (strides 1 .. 32)


class FPNBackbone(nn.Module):
    """An encoder's stride 4-32 features through a feature pyramid: five maps of ``out_channels`` channels
    (P2-P5 and P6, a max-pooled P5), as torchvision's detection heads expect.

    Args:
        encoder: an encoder at output stride 32 (see :func:`seglab.models.build_backbone`).
        out_channels: channels of every pyramid level.
    """

    def __init__(self, encoder: nn.Module, out_channels: int = 256) -> None:
        super().__init__()
        if encoder.output_stride != 32:
            raise UserError(
                f"model.backbone.output_stride={encoder.output_stride}: Mask R-CNN's feature pyramid needs the "
                "undilated strides 4, 8, 16, 32; set model.backbone.output_stride=32"
            )
        self.body = encoder
        self.fpn = FeaturePyramidNetwork(
            [encoder.out_channels[level] for level in FPN_LEVELS], out_channels, extra_blocks=LastLevelMaxPool()
        )
        self.out_channels = out_channels

    def forward(self, images: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        features = self.body(images)
        return self.fpn(OrderedDict((str(i), features[level]) for i, level in enumerate(FPN_LEVELS)))


class KeepSizeTransform(GeneralizedRCNNTransform):
    """torchvision's batching transform without its resizing: the images keep the size the data pipeline gave
    them (which already scaled and normalised them)."""

    def resize(self, image, target=None):  # noqa: ANN001, ANN201 (torchvision's signature)
        return image, target


def build_maskrcnn(
    backbone: nn.Module,
    num_classes: int,
    fpn_channels: int = 256,
    min_size: int | None = None,
    max_size: int | None = None,
    anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
    detections_per_image: int = 100,
    detector_options: Mapping[str, Any] | None = None,
) -> MaskRCNN:
    """torchvision's Mask R-CNN on :class:`FPNBackbone` (``backbone``).

    Args:
        backbone: an encoder from :func:`seglab.models.build_backbone` at output stride 32.
        num_classes: detector classes, background included (thing classes + 1).
        fpn_channels: channels of the feature pyramid.
        min_size, max_size: resize images so the short side is ``min_size`` (the long side at most
            ``max_size``), as torchvision does (800, 1333 for COCO); ``None`` keeps the data pipeline's size.
        anchor_sizes: one anchor size in pixels per pyramid level (P2-P6), three aspect ratios each.
        detections_per_image: the most instances kept per image.
        detector_options: further keyword arguments of torchvision's ``MaskRCNN``, e.g.
            ``box_batch_size_per_image`` (RoIs sampled per training image, 512) or ``rpn_post_nms_top_n_test``
            (proposals per test image, 1000).
    """
    if len(anchor_sizes) != 5:
        raise UserError(f"model.anchor_sizes={list(anchor_sizes)}: give one size per pyramid level P2-P6 (five)")
    anchors = AnchorGenerator(tuple((int(size),) for size in anchor_sizes), ((0.5, 1.0, 2.0),) * 5)
    identity = {"image_mean": [0.0, 0.0, 0.0], "image_std": [1.0, 1.0, 1.0]}  # the data pipeline normalised
    sizes = {"min_size": min_size or 800, "max_size": max_size or 1333}
    model = MaskRCNN(
        FPNBackbone(backbone, fpn_channels),
        num_classes=num_classes,
        rpn_anchor_generator=anchors,
        box_detections_per_img=detections_per_image,
        **sizes,
        **identity,
        **dict(detector_options or {}),
    )
    if min_size is None:
        model.transform = KeepSizeTransform(**sizes, **identity)
    return model
