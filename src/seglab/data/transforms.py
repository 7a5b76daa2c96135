"""Joint image/mask transforms on torchvision ``tv_tensors``.

A sample is a dict with ``image`` (:class:`tv_tensors.Image`, uint8 CxHxW) and ``mask``
(:class:`tv_tensors.Mask`, HxW). torchvision.transforms.v2 moves both together: geometric transforms resize
masks with nearest-neighbour interpolation, photometric ones leave them alone. Pipelines are composed in the
data configs from these classes and torchvision's own (``v2.RandomHorizontalFlip``, ``v2.ColorJitter``, ...).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from ``scale_range`` (image bilinear, masks nearest)."""

    def __init__(self, scale_range: Sequence[float] = (0.5, 2.0)) -> None:
        super().__init__()
        low, high = (float(v) for v in scale_range)
        if not 0 < low <= high:
            raise ValueError(f"scale_range must satisfy 0 < low <= high, got {list(scale_range)}")
        self.scale_range = (low, high)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        scale = torch.empty(()).uniform_(*self.scale_range).item()
        return {"size": [max(1, round(height * scale)), max(1, round(width * scale))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.resize, inpt, params["size"], antialias=True)


class RandomCropWithIgnore(v2.RandomCrop):
    """Random crop of ``size`` = [h, w]; smaller inputs are padded, images with 0 and masks with ``ignore_index``."""

    def __init__(self, size: Sequence[int], ignore_index: int = 255) -> None:
        super().__init__(
            size=list(size), pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: ignore_index}
        )


class Normalize(v2.Compose):
    """uint8 image -> float32 in [0, 1] -> normalised by ``mean``/``std`` (ImageNet by default); masks untouched."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__([v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))])
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """The inverse: normalised float images ``(..., 3, H, W)`` -> uint8 in [0, 255]."""
        mean = images.new_tensor(self.mean).view(-1, 1, 1)
        std = images.new_tensor(self.std).view(-1, 1, 1)
        return ((images * std + mean) * 255).round().clamp(0, 255).to(torch.uint8)


def find_normalize(transform: Any) -> Normalize | None:
    """The :class:`Normalize` step of a transform pipeline (searched through nested ``Compose``), if any."""
    if isinstance(transform, Normalize):
        return transform
    for step in getattr(transform, "transforms", []):
        found = find_normalize(step)
        if found is not None:
            return found
    return None
