"""COCO mask AP (AP@[.5:.95], AP50, AP75, per class) through torchmetrics and pycocotools.

torchmetrics' ``MeanAveragePrecision(iou_type="segm", backend="pycocotools")`` runs pycocotools' own COCOeval,
so the figures are those of the official evaluation: crowd ground truth (``iscrowd``) is matched without
counting as a miss, at most 100 detections per image, classes without ground truth left out of the mean. The
IoU and recall thresholds are COCOeval's own float64 ones: torchmetrics' defaults are float32, and an IoU of
exactly 0.55 (11/20 pixels) then falls below the threshold 0.550000012.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from pycocotools.cocoeval import Params
from torchmetrics.detection import MeanAveragePrecision


class MaskAveragePrecision(MeanAveragePrecision):
    """Mask AP over a whole split, per image: predictions ``masks`` (K, H, W) bool, ``labels``, ``scores``;
    ground truth ``masks``, ``labels``, ``iscrowd`` (the batch's instance targets).

    Args:
        class_names: one name per class id (all classes; only the thing classes get an AP).
        thing_ids: the class ids with instances.
    """

    def __init__(self, class_names: Sequence[str], thing_ids: Sequence[int]) -> None:
        coco = Params(iouType="segm")
        super().__init__(
            iou_type="segm",
            iou_thresholds=coco.iouThrs.tolist(),
            rec_thresholds=coco.recThrs.tolist(),
            class_metrics=True,
            backend="pycocotools",
        )
        self.class_names = list(class_names)
        self.thing_ids = [int(i) for i in thing_ids]

    def update_instances(self, predictions: Sequence[dict[str, Any]], targets: Sequence[dict[str, Any]]) -> None:
        """Add images: one prediction dict and one instance-target dict each."""
        preds = [{"masks": p["masks"].bool(), "labels": p["labels"], "scores": p["scores"]} for p in predictions]
        gts = [{"masks": t["masks"].bool(), "labels": t["labels"], "iscrowd": t["iscrowd"].bool()} for t in targets]
        for pred, gt in zip(preds, gts):
            if not len(gt["masks"]) and len(pred["masks"]):
                # torchmetrics leaves an image without ground-truth masks out of its COCO index, so its detections
                # would not count as false positives (COCOeval counts them); an empty crowd region, which matches
                # nothing and is not a positive, keeps the image in.
                gt.update(
                    masks=torch.zeros_like(pred["masks"][:1]),
                    labels=pred["labels"][:1],
                    iscrowd=torch.ones(1, dtype=torch.bool, device=pred["masks"].device),
                )
        self.update(preds, gts)

    def compute(self) -> dict[str, torch.Tensor]:
        result = super().compute()
        if "map_per_class" not in result:
            # torchmetrics skips COCOeval when there is no detection at all; COCOeval scores every class with
            # (non-crowd) ground truth 0 then, and leaves the others out.
            truth = [labels[~crowd.bool()] for labels, crowd in zip(self.groundtruth_labels, self.groundtruth_crowds)]
            classes = torch.cat(truth).unique() if truth else torch.zeros(0, dtype=torch.long)
            ap = torch.tensor(0.0 if len(classes) else -1.0)
            result.update(map=ap, map_50=ap, map_75=ap, classes=classes, map_per_class=torch.zeros(len(classes)))
        return result

    def scores(self) -> dict[str, float]:
        """``mAP``, ``mAP_50``, ``mAP_75`` and ``AP/<class>`` for every thing class (NaN: no ground truth)."""
        result = self.compute()
        per_class = dict(zip(result["classes"].reshape(-1).tolist(), result["map_per_class"].reshape(-1).tolist()))
        scores = {"mAP": result["map"].item(), "mAP_50": result["map_50"].item(), "mAP_75": result["map_75"].item()}
        scores.update({f"AP/{self.class_names[i]}": per_class.get(i, -1.0) for i in self.thing_ids})
        return {name: math.nan if value < 0 else value for name, value in scores.items()}  # COCOeval's -1: undefined
