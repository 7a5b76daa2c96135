"""Instance targets: one format for every dataset that has them (synthetic, Cityscapes, COCO).

Datasets built with ``return_instances=True`` add ``sample["instances"]``, a dict of

- ``masks``: :class:`InstanceMasks` (K, H, W) uint8, 1 inside instance k; instances may overlap (COCO);
- ``labels``: (K,) int64 class ids in the dataset's semantic class space (the values of ``sample["mask"]``:
  Cityscapes person is 11, COCO person is 1); ``data.thing_ids`` lists the ids that have instances;
- ``boxes``: :class:`tv_tensors.BoundingBoxes` (K, 4) XYXY in pixels, x2/y2 exclusive (a one-pixel instance at
  column 3 spans x 3..4), tight around the mask;
- ``iscrowd``: (K,) bool; crowd regions (COCO ``iscrowd``, Cityscapes groups without an instance id) cover
  several objects and are ignored in the semantic mask; instance losses and metrics should ignore them too.

The targets go through the same torchvision v2 transforms as the image and the semantic mask. After the
transforms the dataset drops instances with no pixel left (cropped away or occluded) and recomputes tight boxes
from the masks, so ``masks``, ``labels``, ``boxes`` and ``iscrowd`` always have the same K (possibly 0).
Batches keep one such dict per image: see :func:`seglab.data.collate.collate_samples`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.ops import masks_to_boxes


class InstanceMasks(tv_tensors.Mask):
    """(K, H, W) instance masks. A :class:`tv_tensors.Mask` subclass, so v2 transforms move it like a mask
    (nearest-neighbour resizing), but padding fills look it up by exact type: the semantic mask pads with the
    ignore index while instance masks pad with 0 (torchvision's default for types missing from a ``fill`` dict)."""


def tight_boxes(masks: torch.Tensor) -> tv_tensors.BoundingBoxes:
    """XYXY boxes (x2/y2 exclusive) around each of the (K, H, W) masks; every mask must have a pixel."""
    height, width = masks.shape[-2:]
    boxes = masks_to_boxes(masks) + torch.tensor([0.0, 0.0, 1.0, 1.0]) if len(masks) else torch.zeros(0, 4)
    return tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(height, width))


def make_instances(masks: torch.Tensor, labels: Sequence[int], iscrowd: Sequence[bool]) -> dict[str, Any]:
    """Instance targets from (K, H, W) masks (bool or 0/1), their class ids and crowd flags."""
    masks = InstanceMasks(masks.to(torch.uint8))
    return {
        "masks": masks,
        "labels": torch.as_tensor(labels, dtype=torch.int64).reshape(-1),
        "boxes": tight_boxes(masks),
        "iscrowd": torch.as_tensor(iscrowd, dtype=torch.bool).reshape(-1),
    }


def masks_from_id_map(id_map: np.ndarray, ids: Sequence[int]) -> torch.Tensor:
    """(K, H, W) bool masks of the pixels equal to each of ``ids`` in an instance id map."""
    ids_tensor = torch.as_tensor(np.asarray(ids, dtype=np.int64)).reshape(-1, 1, 1)
    return torch.from_numpy(id_map.astype(np.int64, copy=False))[None] == ids_tensor


def tidy_instances(instances: dict[str, Any]) -> dict[str, Any]:
    """Drop instances without pixels (after crops or occlusion) and make the boxes tight around the masks."""
    masks = instances["masks"]
    keep = masks.flatten(1).any(dim=1).bool()  # any() of uint8 is uint8
    masks = InstanceMasks(masks[keep])
    return {
        **instances,
        "masks": masks,
        "labels": instances["labels"][keep],
        "boxes": tight_boxes(masks),
        "iscrowd": instances["iscrowd"][keep],
    }
