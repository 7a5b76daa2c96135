"""Panoptic quality (Kirillov et al., 2019): PQ = SQ x RQ, over all classes, things and stuff.

Segments are matched per image by IoU > 0.5 with torchmetrics' ``PanopticQuality``, which follows panopticapi:
void pixels count in neither IoU nor matching, and a segment that is mostly void is neither a false positive
nor a false negative. Crowd regions are void here (panopticapi treats them as void for their own class only).
Panoptic maps are encoded ``class_id * label_divisor + instance_id`` (:mod:`seglab.models.instance`).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torchmetrics.detection import PanopticQuality


def panoptic_target(
    semantic: torch.Tensor,
    instances: dict[str, Any],
    thing_ids: Sequence[int],
    ignore_index: int = 255,
    label_divisor: int = 1000,
) -> torch.Tensor:
    """The ground-truth panoptic map of one image from its semantic mask (H, W) and instance targets: stuff
    pixels keep their class, each non-crowd thing instance gets its own id, crowd regions and thing pixels
    outside any instance are void (``ignore_index``)."""
    semantic = semantic.long()
    void = ignore_index * label_divisor
    things = torch.as_tensor(list(thing_ids), device=semantic.device, dtype=semantic.dtype)
    panoptic = torch.where(torch.isin(semantic, things), void, semantic * label_divisor)
    masks, labels, crowd = instances["masks"].bool(), instances["labels"], instances["iscrowd"].bool()
    if crowd.any():
        panoptic[masks[crowd].any(dim=0)] = void
    for instance_id, (mask, label) in enumerate(zip(masks[~crowd], labels[~crowd]), start=1):
        panoptic[mask] = label * label_divisor + instance_id
    return panoptic


class PanopticMetrics(PanopticQuality):
    """PQ, SQ and RQ over a whole split from panoptic maps, averaged over all classes, things and stuff.

    Args:
        thing_ids: the class ids with instances.
        num_classes: number of classes; every class not in ``thing_ids`` is stuff.
        ignore_index: the void class.
        label_divisor: the panoptic maps' encoding.
    """

    def __init__(self, thing_ids: Sequence[int], num_classes: int, ignore_index: int = 255, label_divisor: int = 1000) -> None:
        things = sorted(int(i) for i in thing_ids)
        stuff = [i for i in range(num_classes) if i not in things]
        super().__init__(things=things, stuffs=stuff, allow_unknown_preds_category=True)
        self.num_things = len(things)
        self.label_divisor = label_divisor

    def update_maps(self, predictions: torch.Tensor, targets: torch.Tensor) -> None:
        """Add (N, H, W) predicted and ground-truth panoptic maps."""
        self.update(self._pairs(predictions), self._pairs(targets))

    def _pairs(self, panoptic: torch.Tensor) -> torch.Tensor:
        return torch.stack([panoptic // self.label_divisor, panoptic % self.label_divisor], dim=-1)

    def scores(self) -> dict[str, float]:
        """``PQ``, ``SQ``, ``RQ`` over the classes that occur (in ground truth or predictions), and the same over
        things (``PQ_things``, ...) and stuff (``PQ_stuff``, ...); NaN where no class of the group occurs."""
        # torchmetrics orders its per-class states things first, then stuff.
        groups = {"": slice(None), "_things": slice(0, self.num_things), "_stuff": slice(self.num_things, None)}
        scores = {}
        for suffix, part in groups.items():
            iou, tp = self.iou_sum[part].double(), self.true_positives[part].double()
            fp, fn = self.false_positives[part].double(), self.false_negatives[part].double()
            seen = (tp + fp + fn) > 0
            sq = torch.where(tp > 0, iou / tp.clamp(min=1), 0.0)[seen]
            rq = (tp / (tp + 0.5 * fp + 0.5 * fn).clamp(min=1e-12))[seen]
            scores.update({f"PQ{suffix}": (sq * rq).mean().item(), f"SQ{suffix}": sq.mean().item(), f"RQ{suffix}": rq.mean().item()})
        return scores
