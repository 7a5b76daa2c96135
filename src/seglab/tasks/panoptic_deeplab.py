"""Panoptic-DeepLab as a LightningModule: semantic, centre and offset losses; panoptic post-processing; mask AP,
PQ and the semantic mIoU."""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from torchmetrics import Metric

from seglab.losses.base import weighted_mean
from seglab.metrics.cityscapes_inputs import require_instance_ids
from seglab.metrics.cityscapes_pixel import semantic_metrics
from seglab.metrics.panoptic import PanopticMetrics, panoptic_target
from seglab.models.panoptic_deeplab.model import PanopticDeepLab
from seglab.models.panoptic_deeplab.postprocess import panoptic_segmentation
from seglab.models.panoptic_deeplab.targets import batch_panoptic_targets
from seglab.runtime.errors import UserError
from seglab.tasks.instance import InstanceSegmentationModule

LABEL_DIVISOR = 1000


class PanopticDeepLabModule(InstanceSegmentationModule):
    """Trains :class:`~seglab.models.panoptic_deeplab.model.PanopticDeepLab` (Cheng et al., 2020).

    Loss: ``semantic_weight`` x the ``loss`` on the semantic logits (pixels of instances smaller than
    ``small_instance_area`` weighted ``small_instance_weight``) + ``center_weight`` x the MSE of the centre
    heatmap + ``offset_weight`` x the L1 of the offsets (the paper: 1, 200, 0.01); void pixels and crowd
    regions add nothing to the heatmap and offset losses (:mod:`seglab.models.panoptic_deeplab.targets`).
    The weighted terms are logged as ``train/loss/semantic``, ``train/loss/center``, ``train/loss/offset``.

    Besides the mask AP of :class:`~seglab.tasks.instance.InstanceSegmentationModule`, it logs
    ``<stage>/PQ``, ``SQ``, ``RQ`` (and ``_things`` / ``_stuff``, and per class ``PQ_class/<class>``, ...;
    panopticapi's rules, :mod:`seglab.metrics.panoptic`) and the semantic ``mIoU``, ``mAcc``, ``aAcc``, ``fwIoU``,
    ``IoU/<class>`` (with ``cityscapes_scores`` also the official iIoU and category scores). Predictions also hold
    the ``panoptic`` and ``semantic`` maps.

    Args:
        backbone, decoder: as :class:`~seglab.tasks.SemanticSegmentationModule` (the semantic branch).
        instance_decoder: the instance branch's decoder factory.
        num_classes, class_names, thing_ids, optimizer, scheduler, ignore_index, backbone_lr_mult, monitor,
            cityscapes_scores: see :class:`~seglab.tasks.instance.InstanceSegmentationModule`.
        loss: the semantic loss, called as ``loss(logits, target)`` (``loss(logits, target, weights=...)`` when
            ``small_instance_weight`` is not 1: cross-entropy, OHEM or focal).
        center_sigma: the centre Gaussian's standard deviation in pixels.
        small_instance_area, small_instance_weight: see above.
        semantic_weight, center_weight, offset_weight: the loss weights.
        center_threshold, nms_kernel, top_k: centre detection (heatmap threshold, max-pool window, most centres).
        stuff_area: predicted stuff regions smaller than this many pixels become void in the panoptic map.
    """

    # The paper's optimizer, which train.py asks for unless the command line chooses one (seglab.config.preflight).
    paper_optimizer = ("adam", "SGD at lr 0.01 diverges under the centre heatmap loss's weight of 200")

    def __init__(
        self,
        backbone: nn.Module,
        decoder: Callable[..., nn.Module],
        instance_decoder: Callable[..., nn.Module],
        num_classes: int,
        class_names: Sequence[str],
        thing_ids: Sequence[int] | None,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        ignore_index: int = 255,
        backbone_lr_mult: float = 1.0,
        center_sigma: float = 8.0,
        small_instance_area: int = 4096,
        small_instance_weight: float = 3.0,
        semantic_weight: float = 1.0,
        center_weight: float = 200.0,
        offset_weight: float = 0.01,
        center_threshold: float = 0.1,
        nms_kernel: int = 7,
        top_k: int = 200,
        stuff_area: int = 0,
        monitor: str = "val/PQ",
        cityscapes_scores: bool = False,
    ) -> None:
        super().__init__(
            num_classes, class_names, thing_ids, optimizer, scheduler, ignore_index, backbone_lr_mult, monitor,
            cityscapes_scores,
        )  # fmt: skip
        self.save_hyperparameters(ignore=["backbone", "decoder", "instance_decoder", "loss", "optimizer", "scheduler"])
        if small_instance_weight != 1 and "weights" not in inspect.signature(loss.forward).parameters:
            raise UserError(
                f"model.small_instance_weight={small_instance_weight} needs a loss that takes pixel weights "
                f"({type(loss).__name__} does not): use loss=ohem_topk_ce, ohem_ce, ce or focal, or set "
                "model.small_instance_weight=1"
            )
        self.net = PanopticDeepLab(backbone, decoder, instance_decoder, num_classes)
        self.loss = loss
        self.target_options = {
            "sigma": center_sigma,
            "ignore_index": ignore_index,
            "small_instance_area": small_instance_area,
            "small_instance_weight": small_instance_weight,
        }
        self.loss_weights = {"semantic": semantic_weight, "center": center_weight, "offset": offset_weight}
        self.postprocess_options = {
            "thing_ids": self.thing_ids,
            "threshold": center_threshold,
            "nms_kernel": nms_kernel,
            "top_k": top_k,
            "stuff_area": stuff_area,
            "label_divisor": LABEL_DIVISOR,
            "void_label": ignore_index,
        }

    def backbone_parameters(self) -> Iterable[nn.Parameter]:
        return self.net.backbone.parameters()

    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        semantic = batch["mask"].long()
        outputs = self.net(batch["image"])
        targets = batch_panoptic_targets(semantic, batch["instances"], self.thing_ids, **self.target_options)
        if self.target_options["small_instance_weight"] != 1:
            semantic_loss = self.loss(outputs["semantic"], semantic, weights=targets["semantic_weights"])
        else:
            semantic_loss = self.loss(outputs["semantic"], semantic)
        center_weights, offset_weights = targets["center_weights"], targets["offset_weights"]
        center_loss = weighted_mean((outputs["center"] - targets["center"]) ** 2 * center_weights, center_weights)
        offset_loss = weighted_mean((outputs["offsets"] - targets["offsets"]).abs() * offset_weights, offset_weights)
        losses = {"semantic": semantic_loss, "center": center_loss, "offset": offset_loss}
        return {name: self.loss_weights[name] * value for name, value in losses.items()}

    def predict_instances(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        outputs = self.net(images)
        return [
            panoptic_segmentation(semantic, center, offsets, **self.postprocess_options)
            for semantic, center, offsets in zip(outputs["semantic"], outputs["center"], outputs["offsets"])
        ]

    def build_metrics(self) -> dict[str, Metric]:
        return {
            **super().build_metrics(),
            "panoptic": PanopticMetrics(
                self.thing_ids, self.num_classes, self.ignore_index, LABEL_DIVISOR, self.class_names
            ),
            "semantic": semantic_metrics(self.num_classes, self.ignore_index, self.class_names, self.cityscapes_scores),
        }

    def update_metrics(self, metrics: nn.ModuleDict, predictions: list[dict[str, torch.Tensor]], batch: dict[str, Any]) -> None:
        super().update_metrics(metrics, predictions, batch)
        targets = [
            panoptic_target(mask, instances, self.thing_ids, self.ignore_index, LABEL_DIVISOR)
            for mask, instances in zip(batch["mask"], batch["instances"])
        ]
        metrics["panoptic"].update_maps(torch.stack([p["panoptic"] for p in predictions]), torch.stack(targets))
        semantic = torch.stack([p["semantic"] for p in predictions])
        if self.cityscapes_scores:
            metrics["semantic"].update(semantic, batch["mask"], require_instance_ids(batch))
        else:
            metrics["semantic"].update(semantic, batch["mask"])

    def compute_scores(self, metrics: nn.ModuleDict) -> dict[str, Any]:
        return {**super().compute_scores(metrics), **metrics["panoptic"].scores(), **metrics["semantic"].named_scores()}
