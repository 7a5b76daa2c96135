"""The four scores of the official Cityscapes pixel-level evaluation (cityscapesScripts'
``evalPixelLevelSemanticLabeling``): IoU and iIoU, each over the 19 classes and over their categories.

- IoU: ``TP / (TP + FP + FN)`` from the confusion matrix over pixels whose ground truth is evaluated (not 255).
  The class IoU is seglab's ``mIoU`` unchanged, and agrees with the official one on every class: a class absent
  from the ground truth but predicted scores 0, a class absent from both has no score and is left out of the mean.
- Category IoU: the same with the classes of a category merged (flat, construction, object, nature, sky, human,
  vehicle): a pixel of ``car`` predicted ``truck`` counts as right for ``vehicle``.
- iIoU: ``iTP / (iTP + FP + iFN)`` for the 8 classes with instances, where the true positives and false negatives
  inside each ground-truth instance of the gtFine ``*_instanceIds.png`` (an id above 1000) are weighted by the
  class's average instance size over the Cityscapes annotations (the official evaluation's fixed table,
  :data:`~seglab.data.datasets.cityscapes_labels.AVERAGE_INSTANCE_SIZE`) divided by the instance's own size, so
  small objects count as much as large ones; the false positives are the unweighted pixels of the confusion
  matrix. Groups without instance ids (an id below 1000) count in IoU only. Category iIoU: the same for human
  and vehicle, the two categories whose classes all have instances.

Like the confusion matrix, the weighted sums are float64 states summed over images and DDP processes.
"""

from __future__ import annotations

from typing import Sequence

import torch

from seglab.data.datasets.cityscapes_labels import (
    AVERAGE_INSTANCE_SIZE,
    CATEGORIES,
    CLASS_NAMES,
    INSTANCE_CATEGORIES,
    LABELS,
    THING_TRAIN_IDS,
    TRAIN_LABELS,
)
from seglab.metrics.cityscapes_inputs import require_cityscapes_classes
from seglab.metrics.confusion import SegmentationMetrics

INSTANCE_DIVISOR = 1000
# Instance ids of different images in a batch are told apart by adding the image's index times this.
IMAGE_STRIDE = 1 << 16


def semantic_metrics(
    num_classes: int, ignore_index: int, class_names: Sequence[str], cityscapes_scores: bool = False
) -> SegmentationMetrics:
    """The confusion-matrix metrics, with the official Cityscapes scores when ``cityscapes_scores`` (which needs
    the 19 Cityscapes classes: a :class:`UserError` otherwise)."""
    if not cityscapes_scores:
        return SegmentationMetrics(num_classes, ignore_index, class_names)
    require_cityscapes_classes(class_names)
    return CityscapesSegmentationMetrics(ignore_index)


class CityscapesSegmentationMetrics(SegmentationMetrics):
    """:class:`~seglab.metrics.SegmentationMetrics` over the 19 Cityscapes train ids plus the official iIoU and
    category scores (see the module docstring); :meth:`update` takes the batch's instance id maps too."""

    def __init__(self, ignore_index: int = 255) -> None:
        super().__init__(len(CLASS_NAMES), ignore_index, CLASS_NAMES)
        # Label id -> train id of the evaluated classes with instances (caravan and trailer have none), else -1.
        thing_of_label = torch.full((max(lb.id for lb in LABELS) + 1,), -1, dtype=torch.long)
        average_size = torch.zeros(self.num_classes, dtype=torch.float64)
        for label in LABELS:
            if label.train_id in THING_TRAIN_IDS:
                thing_of_label[label.id] = label.train_id
                average_size[label.train_id] = AVERAGE_INSTANCE_SIZE[label.name]
        category_of_class = torch.tensor([CATEGORIES.index(lb.category) for lb in TRAIN_LABELS])  # in train-id order
        self.register_buffer("thing_of_label", thing_of_label, persistent=False)
        self.register_buffer("average_size", average_size, persistent=False)
        self.register_buffer("category_of_class", category_of_class, persistent=False)
        for name, size in (("instance", self.num_classes), ("category_instance", len(CATEGORIES))):
            self.add_state(f"{name}_tp", torch.zeros(size, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{name}_fn", torch.zeros(size, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor, instance_ids: torch.Tensor) -> None:
        """Add a batch: predicted train ids (or logits), target train ids and the (N, H, W) instanceIds maps."""
        if preds.dim() == target.dim() + 1:
            preds = preds.argmax(dim=1)
        super().update(preds, target)
        if instance_ids.shape != target.shape:
            raise ValueError(f"instance ids {tuple(instance_ids.shape)} and target {tuple(target.shape)} differ in shape")
        ids = instance_ids.long()
        label_ids = (ids // INSTANCE_DIVISOR).clamp(max=len(self.thing_of_label) - 1)
        classes = torch.where(ids > INSTANCE_DIVISOR, self.thing_of_label[label_ids], -1)
        inside = classes >= 0
        image = torch.arange(len(ids), device=ids.device).view(-1, *[1] * (ids.dim() - 1)).expand_as(ids)
        _, instance, size = (ids + image * IMAGE_STRIDE)[inside].unique(return_inverse=True, return_counts=True)
        classes, predicted = classes[inside], preds[inside].long()
        class_of_instance = torch.zeros(len(size), dtype=torch.long, device=ids.device).scatter_(0, instance, classes)
        weight = self.average_size[class_of_instance] / size
        for name, hit, group in (
            ("instance", predicted == classes, class_of_instance),
            ("category_instance", self.category_of_class[predicted] == self.category_of_class[classes],
             self.category_of_class[class_of_instance]),
        ):  # fmt: skip
            true_positives = torch.bincount(instance, weights=hit.double(), minlength=len(size))
            getattr(self, f"{name}_tp").index_add_(0, group, true_positives * weight)
            getattr(self, f"{name}_fn").index_add_(0, group, (size - true_positives) * weight)

    def compute(self) -> dict[str, torch.Tensor]:
        """The confusion-matrix scores plus ``iIoU`` (per class, NaN for classes without instances),
        ``IoU_category`` and ``iIoU_category`` (per category) and their means ``mIoU_category``, ``miIoU``,
        ``miIoU_category``; see the module docstring."""
        scores = super().compute()
        cm = self.confmat.double()
        in_category = self.category_of_class[None] == torch.arange(len(CATEGORIES), device=cm.device)[:, None]
        category_cm = in_category.double() @ cm @ in_category.double().t()  # confmat[true category, predicted category]
        false_positives = cm.sum(dim=0) - cm.diag()
        category_false_positives = category_cm.sum(dim=0) - category_cm.diag()
        is_thing = self.average_size > 0
        is_instance_category = torch.tensor([c in INSTANCE_CATEGORIES for c in CATEGORIES], device=cm.device)
        category_iou = category_cm.diag() / (category_cm.sum(dim=1) + category_false_positives)
        instance_iou = self.instance_tp / (self.instance_tp + self.instance_fn + false_positives)
        category_instance_iou = self.category_instance_tp / (
            self.category_instance_tp + self.category_instance_fn + category_false_positives
        )
        nan = torch.tensor(float("nan"), dtype=cm.dtype, device=cm.device)
        scores["iIoU"] = torch.where(is_thing, instance_iou, nan)  # 0 / 0 is NaN already: nothing to score
        scores["IoU_category"] = category_iou
        scores["iIoU_category"] = torch.where(is_instance_category, category_instance_iou, nan)
        scores.update(mIoU_category=category_iou.nanmean(), miIoU=scores["iIoU"].nanmean())
        scores["miIoU_category"] = scores["iIoU_category"].nanmean()
        return scores

    def name_scores(self, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The names of :class:`SegmentationMetrics` plus ``iIoU``, ``mIoU_category``, ``iIoU_category`` (the
        official evaluation's class and category averages), ``iIoU_class/<class>`` for the 8 classes with
        instances and ``IoU_category/<category>``."""
        named = super().name_scores(scores)
        named.update(iIoU=scores["miIoU"], mIoU_category=scores["mIoU_category"], iIoU_category=scores["miIoU_category"])
        named.update({f"iIoU_class/{CLASS_NAMES[c]}": scores["iIoU"][c] for c in THING_TRAIN_IDS})
        named.update({f"IoU_category/{name}": value for name, value in zip(CATEGORIES, scores["IoU_category"])})
        return named
