"""Confusion-matrix metrics: mIoU, mAcc, aAcc, fwIoU and per-class IoU / accuracy.

The matrix is accumulated over the whole split (never an average of per-batch scores) with one ``bincount``
per batch on the device, and summed across processes under DDP (torchmetrics' ``dist_reduce_fx="sum"``).
A class that appears neither in the ground truth nor in the predictions has no IoU (NaN) and is left out of
the means, as the official Cityscapes evaluation does.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchmetrics import Metric


class SegmentationMetrics(Metric):
    """Accumulates ``confmat[true, predicted]`` over pixels whose target is not ``ignore_index``."""

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, num_classes: int, ignore_index: int = 255, class_names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {num_classes} classes")
        self.add_state("confmat", torch.zeros(num_classes, num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``preds`` are class indices (or logits with a class dim 1) of the target's shape."""
        if preds.dim() == target.dim() + 1:
            preds = preds.argmax(dim=1)
        if preds.shape != target.shape:
            raise ValueError(f"predictions {tuple(preds.shape)} and target {tuple(target.shape)} differ in shape")
        valid = target != self.ignore_index
        target = target[valid].long()
        preds = preds[valid].long()
        if target.numel() and int(target.max()) >= self.num_classes:
            bad = sorted(set(target[target >= self.num_classes].unique().tolist()))
            raise ValueError(f"target holds values {bad} that are neither a class (< {self.num_classes}) nor ignore")
        n = self.num_classes
        self.confmat += torch.bincount(target * n + preds, minlength=n * n).reshape(n, n)

    def compute(self) -> dict[str, torch.Tensor]:
        return scores_from_confusion_matrix(self.confmat)

    def named_scores(self) -> dict[str, torch.Tensor]:
        """The scalar scores as logged (see :meth:`name_scores`)."""
        return self.name_scores(self.compute())

    def name_scores(self, scores: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The scalars of :meth:`compute`'s ``scores`` by logged name: ``mIoU``, ``mAcc``, ``aAcc``, ``fwIoU``,
        ``IoU/<class name>`` and ``Acc/<class name>``."""
        named = {name: scores[name] for name in ("mIoU", "mAcc", "aAcc", "fwIoU")}
        for score in ("IoU", "Acc"):
            named.update({f"{score}/{name}": value for name, value in zip(self.class_names, scores[score])})
        return named


def scores_from_confusion_matrix(confmat: torch.Tensor) -> dict[str, torch.Tensor]:
    """Scores of a ``confmat[true, predicted]`` matrix, in float64.

    Returns ``mIoU``, ``mAcc``, ``aAcc``, ``fwIoU`` (scalars) and ``IoU``, ``Acc`` (one value per class; NaN for
    a class with no ground-truth pixel (Acc) or absent from both ground truth and predictions (IoU)).
    """
    cm = confmat.double()
    true_positive = cm.diag()
    gt_pixels = cm.sum(dim=1)
    predicted_pixels = cm.sum(dim=0)
    union = gt_pixels + predicted_pixels - true_positive
    nan = torch.tensor(float("nan"), dtype=cm.dtype, device=cm.device)
    iou = torch.where(union > 0, true_positive / union.clamp(min=1), nan)
    acc = torch.where(gt_pixels > 0, true_positive / gt_pixels.clamp(min=1), nan)
    total = gt_pixels.sum()
    frequency = gt_pixels / total.clamp(min=1)
    return {
        "mIoU": iou.nanmean(),
        "mAcc": acc.nanmean(),
        "aAcc": true_positive.sum() / total if total > 0 else nan,
        "fwIoU": (frequency * iou.nan_to_num()).sum() if total > 0 else nan,
        "IoU": iou,
        "Acc": acc,
    }
