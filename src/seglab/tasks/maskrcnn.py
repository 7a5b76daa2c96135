"""Mask R-CNN as a LightningModule: torchvision's detector and losses on a seglab backbone with an FPN."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from seglab.models.maskrcnn import build_maskrcnn
from seglab.tasks.instance import InstanceSegmentationModule


class MaskRCNNModule(InstanceSegmentationModule):
    """Trains Mask R-CNN (:func:`seglab.models.maskrcnn.build_maskrcnn`) on the thing classes.

    The detector's classes are background + the thing classes (``thing_ids`` in order); predictions come back in
    the semantic class space. Crowd instances are left out of the training targets (torchvision's Mask R-CNN has
    no crowd handling), as detectron2 does; the metrics still see them. Training minimises torchvision's five
    losses, logged as ``train/loss/<name>`` (``loss_classifier``, ``loss_box_reg``, ``loss_mask``,
    ``loss_objectness``, ``loss_rpn_box_reg``); the ``loss`` group does not apply.

    Args:
        backbone: an encoder at output stride 32 (see :func:`seglab.models.build_backbone`).
        num_classes, class_names, thing_ids, optimizer, scheduler, ignore_index, backbone_lr_mult, monitor,
            cityscapes_scores: see :class:`~seglab.tasks.instance.InstanceSegmentationModule`.
        fpn_channels, min_size, max_size, anchor_sizes, detections_per_image, detector_options: see
            :func:`~seglab.models.maskrcnn.build_maskrcnn`.
        mask_threshold: a predicted mask holds the pixels whose mask probability exceeds this.
    """

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        class_names: Sequence[str],
        thing_ids: Sequence[int] | None,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        ignore_index: int = 255,
        backbone_lr_mult: float = 1.0,
        fpn_channels: int = 256,
        min_size: int | None = None,
        max_size: int | None = None,
        anchor_sizes: Sequence[int] = (32, 64, 128, 256, 512),
        detections_per_image: int = 100,
        mask_threshold: float = 0.5,
        detector_options: Mapping[str, Any] | None = None,
        monitor: str = "val/mAP",
        cityscapes_scores: bool = False,
    ) -> None:
        super().__init__(
            num_classes, class_names, thing_ids, optimizer, scheduler, ignore_index, backbone_lr_mult, monitor,
            cityscapes_scores,
        )  # fmt: skip
        self.save_hyperparameters(ignore=["backbone", "optimizer", "scheduler"])
        self.net = build_maskrcnn(
            backbone, len(self.thing_ids) + 1, fpn_channels, min_size, max_size, anchor_sizes, detections_per_image,
            detector_options,
        )
        self.mask_threshold = mask_threshold
        # class id -> detector class (1.. in thing_ids order, -1 for stuff) and back (0 = background).
        to_detector = torch.full((num_classes,), -1, dtype=torch.long)
        to_detector[self.thing_ids] = torch.arange(1, len(self.thing_ids) + 1)
        self.register_buffer("class_to_detector", to_detector, persistent=False)
        self.register_buffer("detector_to_class", torch.tensor([-1, *self.thing_ids]), persistent=False)

    def backbone_parameters(self) -> Iterable[nn.Parameter]:
        return self.net.backbone.body.parameters()

    def detector_targets(self, instances: dict[str, Any]) -> dict[str, torch.Tensor]:
        """torchvision's target format for one image: non-crowd thing instances, detector class ids."""
        labels = self.class_to_detector[instances["labels"]]
        keep = (labels > 0) & ~instances["iscrowd"].bool()
        return {
            "boxes": instances["boxes"][keep].as_subclass(torch.Tensor).float(),
            "labels": labels[keep],
            "masks": instances["masks"][keep].as_subclass(torch.Tensor).to(torch.uint8),
        }

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        targets = [self.detector_targets(instances) for instances in batch["instances"]]
        return self.net(list(batch["image"]), targets)

    def predict_instances(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return [
            {
                "masks": detections["masks"][:, 0] > self.mask_threshold,
                "labels": self.detector_to_class[detections["labels"]],
                "scores": detections["scores"],
            }
            for detections in self.net(list(images))
        ]
