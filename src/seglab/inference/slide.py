"""Sliding-window inference: overlapping crops of the training size, logits averaged where they overlap."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from seglab.inference.whole import Network
from seglab.runtime.errors import UserError


def slide_inference(
    net: Network, images: torch.Tensor, crop_size: Sequence[int], stride: Sequence[int] | None = None
) -> torch.Tensor:
    """Logits ``(N, C, H, W)`` of images ``(N, 3, H, W)`` from windows of ``crop_size`` = [h, w].

    Windows start every ``stride`` = [h, w] pixels (default: two thirds of the crop) and the last window of each
    row and column is aligned with the image's far edge, so every pixel is covered and no window leaves the
    image. Where windows overlap their logits are averaged (no seams). An image smaller than the crop is padded
    at the bottom and right with zeros (the mean colour after normalisation) and the padding cropped off again.
    """
    if crop_size is None:
        raise UserError("slide inference needs a window size: set inference.crop_size (data.crop_size is not set)")
    crop_h, crop_w = (int(v) for v in crop_size)
    if stride is None:
        stride = (max(1, crop_h * 2 // 3), max(1, crop_w * 2 // 3))
    stride_h, stride_w = (int(v) for v in stride)
    if not (0 < stride_h <= crop_h and 0 < stride_w <= crop_w):
        raise UserError(
            f"slide inference: stride [{stride_h}, {stride_w}] must be positive and at most crop_size "
            f"[{crop_h}, {crop_w}] or windows leave gaps; set inference.stride accordingly"
        )
    height, width = images.shape[-2:]
    padded = F.pad(images, (0, max(crop_w - width, 0), 0, max(crop_h - height, 0)))
    padded_h, padded_w = padded.shape[-2:]
    logits: torch.Tensor | None = None
    counts = torch.zeros(1, 1, padded_h, padded_w, device=images.device)
    for top in _window_starts(padded_h, crop_h, stride_h):
        for left in _window_starts(padded_w, crop_w, stride_w):
            window = (..., slice(top, top + crop_h), slice(left, left + crop_w))
            out = net(padded[window])
            if logits is None:
                logits = out.new_zeros(out.shape[0], out.shape[1], padded_h, padded_w)
            logits[window] += out
            counts[window] += 1
    assert logits is not None
    return (logits / counts)[..., :height, :width]


def _window_starts(size: int, crop: int, stride: int) -> list[int]:
    """Window offsets along one axis: every ``stride`` pixels, the last one flush with the far edge."""
    last = size - crop
    return [*range(0, last, stride), last]
