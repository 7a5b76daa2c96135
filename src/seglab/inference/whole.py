"""Whole-image inference: one forward pass over the full image."""

from __future__ import annotations

from typing import Callable

import torch

Network = Callable[[torch.Tensor], torch.Tensor]


def whole_inference(net: Network, images: torch.Tensor) -> torch.Tensor:
    """Logits ``(N, C, H, W)`` of images ``(N, 3, H, W)`` from a single pass of ``net``."""
    return net(images)
