"""Panoptic-DeepLab's training targets, built on the fly from a batch's semantic masks and instance targets.

For each thing instance (not crowd), with mass centre ``(cy, cx)`` = the mean of its pixel coordinates:

- centre heatmap: a 2-D Gaussian ``exp(-d^2 / (2 sigma^2))`` around the centre's nearest pixel (peak 1), cut off
  beyond ``3 sigma``; where two instances' Gaussians meet, the larger value wins;
- offsets: each pixel of the instance holds ``(cy - y, cx - x)``, the vector to the exact mass centre (rows first);
- semantic weights: the pixels of instances smaller than ``small_instance_area`` weigh ``small_instance_weight``
  in the semantic loss (the paper: 3 for instances under 64x64 pixels), every other pixel 1.

Void pixels (the ignore index) and crowd regions carry no heatmap loss (``center_weights`` 0); offsets are
learnt on the pixels of non-crowd thing instances only (``offset_weights``). Where instances overlap (COCO),
the later one owns the pixel, as in the semantic mask.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch


def instance_center(mask: torch.Tensor) -> tuple[float, float]:
    """The mass centre ``(cy, cx)`` of a non-empty (H, W) mask: the mean of its pixel coordinates."""
    cy, cx = mask.nonzero().double().mean(dim=0).tolist()
    return cy, cx


def gaussian_window(height: int, width: int, cy: int, cx: int, sigma: float, device: torch.device):
    """The slices of an (H, W) map within ``ceil(3 sigma)`` of pixel (cy, cx), and the Gaussian on them."""
    radius = math.ceil(3 * sigma)
    y0, y1 = max(cy - radius, 0), min(cy + radius + 1, height)
    x0, x1 = max(cx - radius, 0), min(cx + radius + 1, width)
    ys = torch.arange(y0, y1, device=device, dtype=torch.float32)[:, None] - cy
    xs = torch.arange(x0, x1, device=device, dtype=torch.float32)[None, :] - cx
    return (slice(y0, y1), slice(x0, x1)), torch.exp(-(ys**2 + xs**2) / (2 * sigma**2))


def panoptic_targets(
    semantic: torch.Tensor,
    instances: dict[str, Any],
    thing_ids: Sequence[int],
    sigma: float = 8.0,
    ignore_index: int = 255,
    small_instance_area: int = 4096,
    small_instance_weight: float = 3.0,
) -> dict[str, torch.Tensor]:
    """Targets of one image.

    Args:
        semantic: (H, W) class ids, ``ignore_index`` on void pixels.
        instances: the image's instance targets (:mod:`seglab.data.instances`): ``masks`` (K, H, W), ``labels``,
            ``iscrowd``.
        thing_ids: the class ids with instances; instances of other classes are left out.
        sigma: standard deviation of the centre Gaussian, in pixels.
        ignore_index: the void label of ``semantic``.
        small_instance_area, small_instance_weight: instances with fewer pixels weigh this much in the
            semantic loss.

    Returns:
        ``center`` (1, H, W), ``center_weights`` (1, H, W), ``offsets`` (2, H, W) as (dy, dx),
        ``offset_weights`` (1, H, W) and ``semantic_weights`` (H, W), all float32.
    """
    height, width = semantic.shape[-2:]
    device = semantic.device
    center = torch.zeros(height, width, device=device)
    offsets = torch.zeros(2, height, width, device=device)
    offset_weights = torch.zeros(height, width, device=device)
    semantic_weights = torch.ones(height, width, device=device)
    center_weights = (semantic != ignore_index).float()

    masks = instances["masks"].bool()
    crowd = instances["iscrowd"].bool()
    is_thing = torch.isin(instances["labels"], torch.as_tensor(list(thing_ids), device=instances["labels"].device))
    if crowd.any():
        center_weights[masks[crowd].any(dim=0)] = 0.0
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    for mask in masks[is_thing & ~crowd]:
        cy, cx = instance_center(mask)
        offsets[0][mask] = cy - ys[mask]
        offsets[1][mask] = cx - xs[mask]
        offset_weights[mask] = 1.0
        if int(mask.sum()) < small_instance_area:
            semantic_weights[mask] = small_instance_weight
        window, gaussian = gaussian_window(height, width, math.floor(cy + 0.5), math.floor(cx + 0.5), sigma, device)
        center[window] = torch.maximum(center[window], gaussian)
    return {
        "center": center[None],
        "center_weights": center_weights[None],
        "offsets": offsets,
        "offset_weights": offset_weights[None],
        "semantic_weights": semantic_weights,
    }


def batch_panoptic_targets(
    semantic: torch.Tensor, instances: Sequence[dict[str, Any]], thing_ids: Sequence[int], **kwargs: Any
) -> dict[str, torch.Tensor]:
    """:func:`panoptic_targets` of each image of a batch ((N, H, W) masks, one instance dict each), stacked."""
    per_image = [panoptic_targets(mask, targets, thing_ids, **kwargs) for mask, targets in zip(semantic, instances)]
    return {key: torch.stack([targets[key] for targets in per_image]) for key in per_image[0]}
