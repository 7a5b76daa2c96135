"""Panoptic quality (Kirillov et al., 2019) by the rules of the official scorer, panopticapi's ``pq_compute``.

Panoptic maps encode ``class_id * label_divisor + instance_id`` (:mod:`seglab.models.panoptic_deeplab`); a pixel whose
class is ``ignore_index`` is void. In the ground truth, a thing-class segment with instance id 0 is a crowd
region (``iscrowd=1`` in COCO's panoptic json, a group without instance ids in Cityscapes, as panopticapi's
Cityscapes converter writes it); stuff has instance id 0 and is never crowd.

Per image, from the segments' areas and one histogram of (ground truth, prediction) segment pairs:

- a ground-truth and a predicted segment of the same class match when IoU > 0.5, the union leaving out the
  predicted segment's pixels on ground-truth void (void pixels of the prediction stay in it: a prediction that
  abstains loses); crowd regions match nothing;
- every unmatched non-crowd ground-truth segment is a false negative;
- an unmatched predicted segment is a false positive unless more than half of it lies on ground-truth void or on
  a crowd region of its own class.

TP, FP, FN and the summed IoU of the matches are kept per class and summed over images and DDP processes (like
the confusion matrix); PQ, SQ and RQ are computed per class, then averaged over the classes with any TP, FP or
FN (all, things, stuff). These are panopticapi's rules (torchmetrics' ``PanopticQuality`` adds others: it takes
void prediction pixels out of the union and excuses mostly-void ground truth), checked against panopticapi in
the tests. Where seglab differs from panopticapi's output: a class without TP, FP or FN has no score (NaN; its
per-class entry in panopticapi reads 0, and both leave it out of the means), a group without such a class is
NaN (panopticapi divides by zero), and the crowd regions of one class in an image form one segment (panopticapi
also excuses a prediction only on the last crowd segment of its class that the json lists).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torchmetrics import Metric


def panoptic_target(
    semantic: torch.Tensor,
    instances: dict[str, Any],
    thing_ids: Sequence[int],
    ignore_index: int = 255,
    label_divisor: int = 1000,
) -> torch.Tensor:
    """The ground-truth panoptic map of one image from its semantic mask (H, W) and instance targets: stuff
    pixels keep their class (instance id 0), each non-crowd thing instance gets its own id from 1, crowd regions
    get their class with instance id 0 (a crowd segment), thing pixels outside any instance are void."""
    semantic = semantic.long()
    void = ignore_index * label_divisor
    things = torch.as_tensor(list(thing_ids), device=semantic.device, dtype=semantic.dtype)
    panoptic = torch.where(torch.isin(semantic, things), void, semantic * label_divisor)
    masks, labels, crowd = instances["masks"].bool(), instances["labels"], instances["iscrowd"].bool()
    for mask, label in zip(masks[crowd], labels[crowd]):
        panoptic[mask] = label * label_divisor
    for instance_id, (mask, label) in enumerate(zip(masks[~crowd], labels[~crowd]), start=1):
        panoptic[mask] = label * label_divisor + instance_id
    return panoptic


class PanopticMetrics(Metric):
    """PQ, SQ and RQ over a whole split from panoptic maps (see the module docstring for the rules).

    Args:
        thing_ids: the class ids with instances.
        num_classes: number of classes; every class not in ``thing_ids`` is stuff.
        ignore_index: the void class.
        label_divisor: the panoptic maps' encoding.
        class_names: names for the per-class scores (default: class indices).
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(
        self,
        thing_ids: Sequence[int],
        num_classes: int,
        ignore_index: int = 255,
        label_divisor: int = 1000,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.label_divisor = label_divisor
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        is_thing = torch.zeros(num_classes, dtype=torch.bool)
        is_thing[[int(i) for i in thing_ids]] = True
        self.register_buffer("is_thing", is_thing, persistent=False)
        for name in ("true_positives", "false_positives", "false_negatives"):
            self.add_state(name, torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("iou_sum", torch.zeros(num_classes, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        """Add (N, H, W) predicted and ground-truth panoptic maps."""
        if predictions.shape != targets.shape:
            raise ValueError(f"predicted {tuple(predictions.shape)} and target {tuple(targets.shape)} maps differ in shape")
        for prediction, target in zip(predictions, targets):
            self._update_image(prediction.long(), target.long())

    def update_maps(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        """:meth:`update`."""
        self.update(predictions, targets)

    def _segments(self, panoptic: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The map's segment ids (void first, as id -1), each pixel's index into them and each segment's area."""
        void = panoptic // self.label_divisor == self.ignore_index
        classes = panoptic[~void] // self.label_divisor
        if classes.numel() and (int(classes.min()) < 0 or int(classes.max()) >= self.num_classes):
            bad = sorted(set(classes[(classes < 0) | (classes >= self.num_classes)].tolist()))
            raise ValueError(f"the {kind} panoptic map holds classes {bad}: neither a class (< {self.num_classes}) nor void")
        ids, index, area = torch.where(void, -1, panoptic).flatten().unique(return_inverse=True, return_counts=True)
        return ids, index, area

    def _update_image(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        gt_ids, gt_index, gt_area = self._segments(target, "ground-truth")
        pred_ids, pred_index, pred_area = self._segments(prediction, "predicted")
        gt_class, pred_class = gt_ids // self.label_divisor, pred_ids // self.label_divisor
        gt_void, pred_void = gt_ids < 0, pred_ids < 0
        gt_crowd = ~gt_void & self.is_thing[gt_class.clamp(min=0)] & (gt_ids % self.label_divisor == 0)
        # The histogram of overlapping (ground truth, prediction) segment pairs, void (id -1) included in both.
        pairs, overlap = (gt_index * len(pred_ids) + pred_index).unique(return_counts=True)
        gt_of, pred_of = pairs // len(pred_ids), pairs % len(pred_ids)
        same_class = gt_class[gt_of] == pred_class[pred_of]
        # Each predicted segment's pixels on ground-truth void: out of its unions, and excused as a false positive.
        on_void = torch.zeros_like(pred_area).index_add_(0, pred_of[gt_void[gt_of]], overlap[gt_void[gt_of]])

        candidate = ~gt_void[gt_of] & ~pred_void[pred_of] & ~gt_crowd[gt_of] & same_class
        union = pred_area[pred_of] + gt_area[gt_of] - overlap - on_void[pred_of]
        iou = overlap.double() / union.clamp(min=1).double()
        # At most one match per segment: two would need more than all of the segment's (non-void) pixels.
        match = candidate & (iou > 0.5)
        self.true_positives += torch.bincount(gt_class[gt_of[match]], minlength=self.num_classes)
        self.iou_sum.index_add_(0, gt_class[gt_of[match]], iou[match])

        gt_matched = torch.zeros_like(gt_void).index_fill_(0, gt_of[match], True)
        missed = ~gt_void & ~gt_crowd & ~gt_matched
        self.false_negatives += torch.bincount(gt_class[missed], minlength=self.num_classes)

        pred_matched = torch.zeros_like(pred_void).index_fill_(0, pred_of[match], True)
        on_own_crowd = gt_crowd[gt_of] & same_class
        excused = on_void.index_add(0, pred_of[on_own_crowd], overlap[on_own_crowd])
        false_positive = ~pred_void & ~pred_matched & (2 * excused <= pred_area)
        self.false_positives += torch.bincount(pred_class[false_positive], minlength=self.num_classes)

    def compute(self) -> dict[str, torch.Tensor]:
        """Per class (float64): ``PQ``, ``SQ``, ``RQ``, NaN for a class without TP, FP or FN."""
        tp, fp, fn = self.true_positives.double(), self.false_positives.double(), self.false_negatives.double()
        nan = torch.tensor(float("nan"), dtype=torch.float64, device=tp.device)
        seen = (tp + fp + fn) > 0
        rq = torch.where(seen, tp / (tp + 0.5 * fp + 0.5 * fn).clamp(min=1e-12), nan)
        sq = torch.where(seen, torch.where(tp > 0, self.iou_sum / tp.clamp(min=1), 0.0), nan)
        return {"PQ": sq * rq, "SQ": sq, "RQ": rq}

    def scores(self) -> dict[str, float]:
        """``PQ``, ``SQ``, ``RQ`` averaged over the classes that occur (with any TP, FP or FN), the same over
        things (``PQ_things``, ...) and stuff (``PQ_stuff``, ...), NaN where no class of the group occurs, and
        per class ``PQ_class/<name>``, ``SQ_class/<name>``, ``RQ_class/<name>`` (NaN: the class does not occur)."""
        per_class = self.compute()
        groups = {"": torch.ones_like(self.is_thing), "_things": self.is_thing, "_stuff": ~self.is_thing}
        scores = {}
        for suffix, members in groups.items():
            scores.update({f"{name}{suffix}": values[members].nanmean().item() for name, values in per_class.items()})
        for name, values in per_class.items():
            scores.update({f"{name}_class/{label}": value for label, value in zip(self.class_names, values.tolist())})
        return scores
