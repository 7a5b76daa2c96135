"""The official Cityscapes instance-level AP (cityscapesScripts' ``evalInstanceLevelSemanticLabeling``).

Ground truth is each image's gtFine ``*_instanceIds.png``: an id above 999 is an instance (``label_id * 1000 + n``),
a smaller one a plain label id, for the 8 classes with instances a group of objects without instance ids. Per
class and IoU threshold t in 0.5, 0.55, ..., 0.95 (overlaps are IoUs of a prediction with a ground-truth region of
its class):

- the instances to find are those of at least ``min_region_size`` pixels (100); each is matched by the
  predictions that overlap it by more than t: the best-scored one is a true positive, the others false
  positives; an instance that none overlaps is a false negative;
- a prediction that overlaps no region of its class by more than t (groups and small instances included: those
  it ignores) is a false positive, unless more than t of its pixels lie on void (label ids the evaluation
  ignores), groups of its class and instances of its class under the minimum size (a small group counts twice,
  as in the official code);
- the precision-recall curve over the scores is integrated step-wise, with an artificial point at recall 0 and
  precision 1.

``AP_cityscapes`` averages over the classes and thresholds (a class without ground truth left out), ``AP50_cityscapes``
over the classes at t = 0.5. Where seglab differs: a class with ground truth whose every prediction is ignored
scores 0 (the official code stops with an error), and scores are compared exactly (the official one reads the
export's six decimals). Each image's outcomes per class and threshold are rows (class, threshold, true, score)
gathered over DDP processes; the counts of false negatives and of the classes seen are summed.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from seglab.data.datasets.cityscapes_labels import CLASS_NAMES, LABELS, THING_TRAIN_IDS

INSTANCE_DIVISOR = 1000
OVERLAPS = np.arange(0.5, 1.0, 0.05)  # the official thresholds, as its code computes them
MIN_REGION_SIZE = 100


class CityscapesInstanceAP(Metric):
    """AP and AP50 of the official Cityscapes instance evaluation over a split (see the module docstring).

    Predictions are one dict per image (``masks`` (K, H, W) bool, ``labels`` (K,) train ids, ``scores`` (K,)),
    ground truth the (H, W) instanceIds map of each image.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(self, min_region_size: int = MIN_REGION_SIZE) -> None:
        super().__init__()
        self.min_region_size = min_region_size
        self.class_names = [CLASS_NAMES[c] for c in THING_TRAIN_IDS]
        # Label id -> index among the 8 evaluated classes (-1 for the others), train id -> the same index.
        thing_of_label = torch.full((INSTANCE_DIVISOR,), -1, dtype=torch.long)
        thing_of_train_id = torch.full((256,), -1, dtype=torch.long)
        for label in LABELS:
            if label.train_id in THING_TRAIN_IDS:
                thing_of_label[label.id] = thing_of_train_id[label.train_id] = THING_TRAIN_IDS.index(label.train_id)
        void_ids = torch.tensor([label.id for label in LABELS if label.ignore_in_eval and label.id >= 0])
        self.register_buffer("thing_of_label", thing_of_label, persistent=False)
        self.register_buffer("thing_of_train_id", thing_of_train_id, persistent=False)
        self.register_buffer("void_ids", void_ids, persistent=False)
        num, thresholds = len(THING_TRAIN_IDS), len(OVERLAPS)
        self.add_state("rows", default=[], dist_reduce_fx="cat")  # (class, threshold, true, score) per image
        self.add_state("false_negatives", torch.zeros(num, thresholds, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("images_with_truth", torch.zeros(num, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("images_with_predictions", torch.zeros(num, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, predictions: Sequence[dict[str, Any]], instance_ids: torch.Tensor) -> None:
        """Add images: one prediction dict each and their (N, H, W) instanceIds maps."""
        for prediction, ids in zip(predictions, instance_ids):
            self.rows.append(self._image_rows(prediction, ids.long()))

    def _image_rows(self, prediction: dict[str, Any], ids: torch.Tensor) -> torch.Tensor:
        # Ground-truth regions of the evaluated classes: instances and groups.
        values, region_of_pixel, region_size = ids.flatten().unique(return_inverse=True, return_counts=True)
        label_ids = torch.where(values >= INSTANCE_DIVISOR, values // INSTANCE_DIVISOR, values)
        region_class = self.thing_of_label[label_ids.clamp(max=INSTANCE_DIVISOR - 1)]
        group = values < INSTANCE_DIVISOR
        small = region_size < self.min_region_size
        evaluated = (region_class >= 0) & ~group & ~small
        self.images_with_truth += torch.bincount(region_class[evaluated], minlength=len(self.class_names)) > 0

        masks = prediction["masks"].bool().flatten(1)
        classes = self.thing_of_train_id[prediction["labels"].long()]
        keep = (classes >= 0) & masks.any(dim=1)  # the official evaluation skips other classes and empty masks
        masks, classes, scores = masks[keep], classes[keep], prediction["scores"][keep].double()
        self.images_with_predictions += torch.bincount(classes, minlength=len(self.class_names)) > 0

        # Intersections of each prediction with each region, counted over the prediction's pixels only.
        prediction_index, pixel = masks.nonzero(as_tuple=True)
        pairs = prediction_index * len(values) + region_of_pixel[pixel]
        intersection = torch.bincount(pairs, minlength=len(masks) * len(values)).view(len(masks), len(values))
        intersection = intersection * (region_class[None] == classes[:, None])  # only regions of its class count
        size = masks.sum(dim=1)
        on_void = torch.isin(values, self.void_ids)[region_of_pixel[pixel]]
        ignored = torch.bincount(prediction_index, weights=on_void.double(), minlength=len(masks))
        ignored += (intersection * (group.long() + small.long())[None]).sum(dim=1)  # a small group counts twice
        iou = intersection.double() / (size[:, None] + region_size[None] - intersection).double()
        rows, missed = image_outcomes(
            iou.cpu().numpy(), evaluated.cpu().numpy(), region_class.cpu().numpy(), classes.cpu().numpy(),
            scores.cpu().numpy(), (ignored / size).cpu().numpy(), len(self.class_names),
        )  # fmt: skip
        self.false_negatives += torch.from_numpy(missed).to(self.false_negatives.device)
        return torch.from_numpy(rows).to(ids.device)

    def compute(self) -> torch.Tensor:
        """AP per class (of :attr:`class_names`) and threshold of ``OVERLAPS``; NaN for a class without ground truth."""
        rows = dim_zero_cat(self.rows).cpu().numpy() if len(self.rows) else np.zeros((0, 4))
        ap = np.full((len(self.class_names), len(OVERLAPS)), math.nan)
        for c in range(len(self.class_names)):
            if not self.images_with_truth[c]:
                continue
            for t in range(len(OVERLAPS)):
                chosen = (rows[:, 0] == c) & (rows[:, 1] == t)
                truth, score = rows[chosen, 2], rows[chosen, 3]
                has_predictions = bool(self.images_with_predictions[c])
                ap[c, t] = average_precision(truth, score, int(self.false_negatives[c, t])) if has_predictions else 0.0
        return torch.from_numpy(ap)

    def scores(self) -> dict[str, float]:
        """``AP_cityscapes`` and ``AP50_cityscapes`` (NaN: no class has ground truth)."""
        ap = self.compute().numpy()
        seen = ~np.isnan(ap)
        return {
            "AP_cityscapes": float(ap[seen].mean()) if seen.any() else math.nan,
            "AP50_cityscapes": float(ap[seen[:, 0], 0].mean()) if seen[:, 0].any() else math.nan,
        }


def image_outcomes(
    iou: np.ndarray, evaluated: np.ndarray, region_class: np.ndarray, classes: np.ndarray, scores: np.ndarray,
    ignored_share: np.ndarray, num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One image's outcomes at each threshold of :data:`OVERLAPS`: the (class, threshold, true, score) rows of its
    true and false positives, and its false negatives per class and threshold.

    Args:
        iou: (P, R) IoU of each prediction with each ground-truth region (0 for regions of another class).
        evaluated: (R,) the regions to find (instances of an evaluated class, at least the minimum size).
        region_class, classes: (R,) and (P,) class indices of the regions and predictions.
        scores: (P,) the predictions' scores.
        ignored_share: (P,) each prediction's share of pixels on void, groups and small instances of its class.
    """
    rows, missed = [], np.zeros((num_classes, len(OVERLAPS)), dtype=np.int64)
    for t, threshold in enumerate(OVERLAPS):
        hits = iou > threshold  # a prediction hits at most one region: an IoU above 0.5 with two would need > 1
        for region in np.flatnonzero(evaluated):
            found = np.sort(scores[hits[:, region]])[::-1]
            if len(found):  # the best-scored is a true positive, the others false positives
                rows += [(region_class[region], t, float(k == 0), score) for k, score in enumerate(found)]
            else:
                missed[region_class[region], t] += 1
        false = ~hits.any(axis=1) & (ignored_share <= threshold)
        rows += [(c, t, 0.0, s) for c, s in zip(classes[false], scores[false])]
    return np.array(rows, dtype=np.float64).reshape(-1, 4), missed


def average_precision(truth: np.ndarray, score: np.ndarray, missed: int) -> float:
    """The area under the precision-recall curve of ranked outcomes (``truth`` 1 / 0 with their ``score``) plus
    ``missed`` ground truth that no prediction found, integrated step-wise as the official evaluation does."""
    if not len(score):
        return 0.0
    order = np.argsort(score, kind="stable")
    truth, score = truth[order], score[order]
    thresholds = np.unique(score, return_index=True)[1]  # first position of each distinct score, ascending
    below = np.concatenate([[0.0], np.cumsum(truth)])[thresholds]  # true positives scored under each threshold
    true_positives = truth.sum() - below
    precision = np.append(true_positives / (len(score) - thresholds), 1.0)
    recall = np.append(true_positives / (truth.sum() + missed), 0.0)
    # Step widths: half the recall drop from the previous point to the next (the first point's previous is itself).
    padded = np.concatenate([recall[:1], recall, [0.0]])
    return float(np.dot(precision, (padded[:-2] - padded[2:]) / 2))
