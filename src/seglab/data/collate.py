"""Batching samples of different sizes and different numbers of instances."""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import default_collate
from torchvision import tv_tensors

from seglab.data.instances import InstanceMasks


def _pad_to(tensor: torch.Tensor, height: int, width: int, fill: float) -> torch.Tensor:
    """Pad the last two dims at the bottom and right (so pixel coordinates and boxes stay valid)."""
    pad_h, pad_w = height - tensor.shape[-2], width - tensor.shape[-1]
    if pad_h == 0 and pad_w == 0:
        return tensor.as_subclass(torch.Tensor)
    return F.pad(tensor.as_subclass(torch.Tensor), (0, pad_w, 0, pad_h), value=fill)


def _pad_instances(instances: dict[str, Any], height: int, width: int) -> dict[str, Any]:
    boxes = instances["boxes"]
    return {
        **instances,
        "masks": InstanceMasks(_pad_to(instances["masks"], height, width, 0)),
        "boxes": tv_tensors.wrap(boxes, like=boxes, canvas_size=(height, width)),
    }


def collate_samples(batch: Sequence[dict[str, Any]], ignore_index: int = 255) -> dict[str, Any]:
    """Stack samples into a batch; the DataModule's ``collate_fn``.

    - ``image`` (B, C, H, W) and ``mask`` (B, H, W): samples of different sizes are padded at the bottom and
      right to the largest height and width in the batch, images with 0 and masks with ``ignore_index``, so the
      padding counts in neither loss nor metrics (samples of one size are stacked unchanged).
    - ``name``: list of str.
    - ``instances`` (when the dataset returns them): a list with one dict per sample, since samples have
      different numbers of instances; masks are padded with 0 like the image (see :mod:`seglab.data.instances`).
    - ``instance_ids`` (Cityscapes' instance id maps, for its official scores): (B, H, W), padded with 0
      (``unlabeled``, a void id).
    - any other key: :func:`torch.utils.data.default_collate`.
    """
    height = max(sample["image"].shape[-2] for sample in batch)
    width = max(sample["image"].shape[-1] for sample in batch)
    out: dict[str, Any] = {
        "image": torch.stack([_pad_to(s["image"], height, width, 0) for s in batch]),
        "mask": torch.stack([_pad_to(s["mask"], height, width, ignore_index) for s in batch]),
    }
    for key in batch[0]:
        if key == "instances":
            out[key] = [_pad_instances(s[key], height, width) for s in batch]
        elif key == "instance_ids":
            out[key] = torch.stack([_pad_to(s[key], height, width, 0) for s in batch])
        elif key == "name":
            out[key] = [s[key] for s in batch]
        elif key not in out:
            out[key] = default_collate([s[key] for s in batch])
    return out
