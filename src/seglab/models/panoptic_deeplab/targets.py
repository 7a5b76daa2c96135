"""Panoptic-DeepLab's training targets, built on the fly from a batch's semantic masks and instance targets.

They follow DeepLab2's ``PanopticSampleGenerator`` (google-research/deeplab2, ``data/sample_generator.py``), the
reference implementation by Panoptic-DeepLab's authors. DeepLab2 reads one panoptic label per pixel; seglab's
instance masks may overlap (COCO), so each pixel first gets one owner, as the datasets paint their masks:

- void where the semantic mask holds ``ignore_index`` (the instances there are cut away);
- crowd where a crowd region covers it (also over an instance, as in COCO's semantic masks), or where a
  thing-class pixel lies in no instance (DeepLab2's instance id 0 of a thing class);
- else the last non-crowd thing instance (in annotation order) covering it, or stuff.

For each thing instance with pixels left, its centre ``(py, px)`` is the mean of its pixel coordinates rounded
half to even (``tf.round``: 2.5 -> 2, 3.5 -> 4), and:

- centre heatmap: ``exp(-((y - py)^2 + (x - px)^2) / (2 sigma^2))`` on the pixels within ``3 sigma + 1`` of the
  centre along each axis (a square of side ``6 sigma + 3``, cut at the image border), 0 beyond; where two
  instances' squares meet, the larger value wins;
- offsets: each of its pixels holds ``(py - y, px - x)``, whole pixels to the centre pixel (rows first);
- semantic weights: the pixels of instances with fewer than ``small_instance_area`` pixels weigh
  ``small_instance_weight`` in the semantic loss (the paper: 3 under 64x64 pixels), every other pixel 1.

Crowd regions are skipped as DeepLab2 skips them: no centre, no offsets, no heatmap loss (``center_weights`` 0,
as on void pixels) and no offset loss (``offset_weights`` is 1 on the pixels of the non-crowd thing instances
only). Their semantic loss is the dataset's choice: Cityscapes keeps their class, COCO marks them void.

Where the references differ: detectron2's Panoptic-DeepLab project points the offsets at the exact mass centre
(``(cy - y, cx - x)``, fractions) and draws a Gaussian for crowd instances too. For a ``sigma`` where ``3 sigma``
is not whole, DeepLab2's Gaussian template has an even size and its peak falls between two pixels; seglab keeps
the peak (1.0) on the centre pixel and stops at ``floor(3 sigma + 1)``, so all three agree for every whole
``sigma`` (the default is 8).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

NO_OWNER = -1
CROWD = -2


def pixel_owners(
    semantic: torch.Tensor, instances: dict[str, Any], thing_ids: Sequence[int], ignore_index: int = 255
) -> torch.Tensor:
    """(H, W) int64: the index (into ``instances``) of the non-crowd thing instance each pixel belongs to,
    :data:`CROWD` for crowd pixels, :data:`NO_OWNER` for stuff and void (see the module docstring)."""
    masks, crowd = instances["masks"].bool(), instances["iscrowd"].bool()
    things = torch.as_tensor(list(thing_ids), device=semantic.device, dtype=torch.long)
    owners = torch.full(semantic.shape[-2:], NO_OWNER, dtype=torch.long, device=semantic.device)
    for index in (torch.isin(instances["labels"].long(), things) & ~crowd).nonzero().flatten().tolist():
        owners[masks[index]] = index  # a later instance takes the pixels it shares with an earlier one
    owners[masks[crowd].any(dim=0) | (torch.isin(semantic.long(), things) & (owners == NO_OWNER))] = CROWD
    owners[semantic == ignore_index] = NO_OWNER
    return owners


def centre_pixel(ys: torch.Tensor, xs: torch.Tensor) -> tuple[int, int]:
    """The mass centre of the pixels ``(ys, xs)``, rounded half to even to a pixel (DeepLab2's ``tf.round``)."""
    centre = torch.stack([ys, xs]).double().mean(dim=1)
    cy, cx = torch.round(centre).long().tolist()
    return cy, cx


def gaussian_window(height: int, width: int, cy: int, cx: int, sigma: float, device: torch.device):
    """The slices of an (H, W) map within ``3 sigma + 1`` of pixel (cy, cx) along each axis, and the Gaussian on
    them (peak 1 at the pixel)."""
    radius = math.floor(3 * sigma + 1)
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
    owners = pixel_owners(semantic, instances, thing_ids, ignore_index)
    center = torch.zeros(height, width, device=device)
    offsets = torch.zeros(2, height, width, device=device)
    semantic_weights = torch.ones(height, width, device=device)
    center_weights = ((semantic != ignore_index) & (owners != CROWD)).float()
    offset_weights = (owners >= 0).float()
    for owner in owners[owners >= 0].unique().tolist():
        ys, xs = (owners == owner).nonzero(as_tuple=True)
        cy, cx = centre_pixel(ys, xs)
        offsets[0, ys, xs] = (cy - ys).float()
        offsets[1, ys, xs] = (cx - xs).float()
        if len(ys) < small_instance_area:
            semantic_weights[ys, xs] = small_instance_weight
        window, gaussian = gaussian_window(height, width, cy, cx, sigma, device)
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
