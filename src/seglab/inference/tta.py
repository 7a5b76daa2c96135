"""Test-time augmentation: several scales, optionally mirrored, logits averaged at the original size."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from seglab.inference.whole import Network, whole_inference


def tta_inference(
    net: Network,
    images: torch.Tensor,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    inner: Callable[[Network, torch.Tensor], torch.Tensor] = whole_inference,
) -> torch.Tensor:
    """Logits ``(N, C, H, W)`` averaged over ``scales`` x (identity, horizontal flip if ``flip``).

    Each view is the image resized by a scale (bilinear), mirrored left-right for the flipped views; ``inner``
    (whole or slide inference, called as ``inner(net, view)``) gives its logits, which are mirrored back and
    resized to the original ``H x W`` before averaging.
    """
    if not scales:
        raise ValueError("tta_inference needs at least one scale")
    height, width = images.shape[-2:]
    total: torch.Tensor | None = None
    views = 0
    for scale in scales:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        scaled = images if size == (height, width) else _resize(images, size)
        for mirrored in (False, True) if flip else (False,):
            view = scaled.flip(-1) if mirrored else scaled
            logits = inner(net, view)
            if mirrored:
                logits = logits.flip(-1)
            if logits.shape[-2:] != (height, width):
                logits = _resize(logits, (height, width))
            total = logits if total is None else total + logits
            views += 1
    assert total is not None
    return total / views


def _resize(tensor: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)
