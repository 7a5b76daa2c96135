"""Panoptic-DeepLab's post-processing as small pure tensor functions (one image at a time).

1. :func:`find_instance_centers`: keep the heatmap's local maxima (max-pool NMS) above a threshold, top-k.
2. :func:`group_pixels`: move each thing pixel by its predicted offset and give it to the nearest centre.
3. :func:`panoptic_segmentation`: the class of each instance is the majority vote of the semantic prediction
   over its pixels, its score the centre's heatmap value times the mean probability of that class over them;
   the panoptic map labels stuff pixels with their class and thing pixels with their instance.

The panoptic map encodes ``class_id * label_divisor + instance_id`` (instance ids from 1; 0 for stuff) and
void pixels (thing pixels no centre claimed, stuff regions under ``stuff_area``) as
``void_label * label_divisor``.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

GROUP_CHUNK = 65536


def find_instance_centers(
    heatmap: torch.Tensor, threshold: float = 0.1, nms_kernel: int = 7, top_k: int | None = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """Centres in an (H, W) (or (1, H, W)) heatmap: pixels above ``threshold`` that are the maximum of the
    ``nms_kernel`` x ``nms_kernel`` window around them, the ``top_k`` highest (``None``: all).

    Returns (K, 2) integer (y, x) coordinates and their (K,) heatmap values, highest first.
    """
    heatmap = heatmap.reshape(heatmap.shape[-2:]).float()
    pooled = F.max_pool2d(heatmap[None, None], nms_kernel, stride=1, padding=nms_kernel // 2)[0, 0]
    peaks = (heatmap == pooled) & (heatmap > threshold)
    coords = peaks.nonzero()
    scores = heatmap[peaks]
    order = scores.argsort(descending=True)
    if top_k is not None:
        order = order[:top_k]
    return coords[order], scores[order]


def group_pixels(offsets: torch.Tensor, coords: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """The index of the nearest centre to each pixel moved by its offset.

    Args:
        offsets: (2, P) predicted (dy, dx) of P pixels.
        coords: (P, 2) the pixels' (y, x).
        centers: (K, 2) centre (y, x), K >= 1.

    Returns:
        (P,) int64 indices into ``centers``.
    """
    targets = coords.float() + offsets.t().float()
    # In chunks: a full Cityscapes image has a million thing pixels, times 200 centres.
    return torch.cat([torch.cdist(chunk, centers.float()).argmin(dim=1) for chunk in targets.split(GROUP_CHUNK)])


def panoptic_segmentation(
    semantic_logits: torch.Tensor,
    center_heatmap: torch.Tensor,
    offsets: torch.Tensor,
    thing_ids: Sequence[int],
    threshold: float = 0.1,
    nms_kernel: int = 7,
    top_k: int | None = 200,
    stuff_area: int = 0,
    label_divisor: int = 1000,
    void_label: int = 255,
) -> dict[str, torch.Tensor]:
    """Instances and panoptic map of one image from the network's outputs.

    Returns ``masks`` (K, H, W) bool, ``labels`` (K,) class ids, ``scores`` (K,) in [0, 1], ``panoptic`` (H, W)
    int64 (see the module docstring) and ``semantic`` (H, W) int64, the argmax of the semantic logits.

    Args:
        semantic_logits: (C, H, W) class logits.
        center_heatmap: (1, H, W) or (H, W) centre heatmap.
        offsets: (2, H, W) offsets (dy, dx) in pixels.
        thing_ids: the class ids with instances.
        threshold, nms_kernel, top_k: see :func:`find_instance_centers`.
        stuff_area: stuff regions (per class) smaller than this many pixels become void.
        label_divisor, void_label: the panoptic map's encoding (see the module docstring).
    """
    height, width = semantic_logits.shape[-2:]
    device = semantic_logits.device
    probabilities = semantic_logits.float().softmax(dim=0)
    semantic = probabilities.argmax(dim=0)
    is_thing = torch.isin(semantic, torch.as_tensor(list(thing_ids), device=device, dtype=semantic.dtype))

    panoptic = semantic * label_divisor
    panoptic[is_thing] = void_label * label_divisor  # claimed below by instances
    if stuff_area > 0:
        for class_id, area in zip(*semantic[~is_thing].unique(return_counts=True)):
            if area < stuff_area:
                panoptic[(semantic == class_id) & ~is_thing] = void_label * label_divisor

    masks, labels, scores = [], [], []
    centers, center_scores = find_instance_centers(center_heatmap, threshold, nms_kernel, top_k)
    if len(centers) and is_thing.any():
        coords = is_thing.nonzero()
        owner = torch.full((height, width), -1, dtype=torch.long, device=device)
        owner[is_thing] = group_pixels(offsets[:, is_thing], coords, centers)
        for index in owner[is_thing].unique().tolist():
            mask = owner == index
            label = semantic[mask].mode().values
            masks.append(mask)
            labels.append(label)
            scores.append(center_scores[index] * probabilities[label][mask].mean())
            panoptic[mask] = label * label_divisor + len(masks)
    return {
        "masks": torch.stack(masks) if masks else torch.zeros(0, height, width, dtype=torch.bool, device=device),
        "labels": torch.stack(labels) if labels else torch.zeros(0, dtype=torch.long, device=device),
        "scores": torch.stack(scores) if scores else torch.zeros(0, device=device),
        "panoptic": panoptic,
        "semantic": semantic,
    }
