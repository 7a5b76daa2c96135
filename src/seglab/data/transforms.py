"""Joint transforms on torchvision ``tv_tensors``.

A sample is a dict with ``image`` (:class:`tv_tensors.Image`, uint8 CxHxW), ``mask`` (:class:`tv_tensors.Mask`,
HxW) and, for instance targets, ``instances`` (:mod:`seglab.data.instances`). torchvision.transforms.v2 moves
them together: geometric transforms resize masks with nearest-neighbour interpolation (labels are never
blended), photometric ones leave masks alone. Pipelines are composed in the data configs
(``conf/data/transforms/``) from these classes and torchvision's own (``v2.RandomResize``,
``v2.RandomHorizontalFlip``, ``v2.ColorJitter``, ...).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

from seglab.data.instances import InstanceMasks

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# mmsegmentation's cat_max_ratio: draws of a crop window before settling for the last one.
CROP_ATTEMPTS = 10


def _check_scale_range(scale_range: Sequence[float]) -> tuple[float, float]:
    low, high = (float(v) for v in scale_range)
    if not 0 < low <= high:
        raise ValueError(f"scale_range must satisfy 0 < low <= high, got {list(scale_range)}")
    return low, high


def _fills(ignore_index: int) -> dict[type, int]:
    """Padding values: images 0, semantic masks the ignore index, instance masks 0 (outside every instance)."""
    return {tv_tensors.Image: 0, tv_tensors.Mask: ignore_index, InstanceMasks: 0}


def _semantic_mask(flat_inputs: list[Any]) -> torch.Tensor | None:
    return next((x for x in flat_inputs if type(x) is tv_tensors.Mask), None)


def _is_balanced(window: torch.Tensor, ignore_index: int, cat_max_ratio: float) -> bool:
    """mmsegmentation's test: the window shows 2+ classes and none covers ``cat_max_ratio`` of its labelled pixels."""
    counts = torch.bincount(window[window != ignore_index].flatten().long())
    counts = counts[counts > 0]
    return len(counts) > 1 and counts.max().item() < cat_max_ratio * counts.sum().item()


class RandomScale(v2.Transform):
    """Resize by a factor drawn uniformly from ``scale_range`` (image bilinear, masks nearest)."""

    def __init__(self, scale_range: Sequence[float] = (0.5, 2.0)) -> None:
        super().__init__()
        self.scale_range = _check_scale_range(scale_range)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        scale = torch.empty(()).uniform_(*self.scale_range).item()
        return {"size": [max(1, round(height * scale)), max(1, round(width * scale))]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return self._call_kernel(F.resize, inpt, params["size"], antialias=True)


class RandomCropWithIgnore(v2.RandomCrop):
    """Random crop of ``size`` = [h, w]; smaller inputs are padded (images 0, masks ``ignore_index``, instance
    masks 0). With ``cat_max_ratio`` < 1 the window is drawn again (up to 10 times, as mmsegmentation does) while
    one class covers more than that share of its labelled pixels."""

    def __init__(self, size: Sequence[int], ignore_index: int = 255, cat_max_ratio: float = 1.0) -> None:
        super().__init__(size=list(size), pad_if_needed=True, fill=_fills(ignore_index))
        self.ignore_index = ignore_index
        self.cat_max_ratio = cat_max_ratio

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        params = super().make_params(flat_inputs)
        mask = _semantic_mask(flat_inputs)
        if self.cat_max_ratio >= 1.0 or mask is None:
            return params
        for _ in range(CROP_ATTEMPTS - 1):
            top = params["top"] - params["padding"][1]  # window origin in unpadded coordinates
            left = params["left"] - params["padding"][0]
            window = mask[max(0, top) : max(0, top + params["height"]), max(0, left) : max(0, left + params["width"])]
            if _is_balanced(window, self.ignore_index, self.cat_max_ratio):
                break
            params = super().make_params(flat_inputs)
        return params


class RandomScaleCrop(v2.Transform):
    """:class:`RandomScale` then :class:`RandomCropWithIgnore`, computed crop-first so it costs what the crop costs.

    For a scale s the crop of ``size`` comes from a window of about size / s pixels of the original; only that
    window is resized (:func:`torchvision.transforms.v2.functional.resized_crop`), instead of resizing the whole
    image and throwing most of it away. The window is rounded to whole pixels, so the effective scale differs
    from the drawn one by under one pixel in ``size / s``: the same augmentation in distribution. Where the
    scaled image is smaller than the crop, the output is padded at the bottom and right (images 0, masks
    ``ignore_index``, instance masks 0). ``cat_max_ratio`` works as in :class:`RandomCropWithIgnore`.
    """

    def __init__(
        self,
        size: Sequence[int],
        scale_range: Sequence[float] = (0.5, 2.0),
        ignore_index: int = 255,
        cat_max_ratio: float = 1.0,
    ) -> None:
        super().__init__()
        self.size = [int(v) for v in size]
        self.scale_range = _check_scale_range(scale_range)
        self.ignore_index = ignore_index
        self.cat_max_ratio = cat_max_ratio
        self.fill = _fills(ignore_index)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        scale = torch.empty(()).uniform_(*self.scale_range).item()
        # Output extent (the crop, or the whole scaled image where that is smaller) and the source window it covers.
        out_h, out_w = (min(crop, max(1, round(side * scale))) for crop, side in zip(self.size, (height, width)))
        src_h, src_w = min(height, max(1, round(out_h / scale))), min(width, max(1, round(out_w / scale)))
        mask = _semantic_mask(flat_inputs)
        check = self.cat_max_ratio < 1.0 and mask is not None
        for attempt in range(CROP_ATTEMPTS):
            top = int(torch.randint(0, height - src_h + 1, ()))
            left = int(torch.randint(0, width - src_w + 1, ()))
            window = mask[top : top + src_h, left : left + src_w] if check else None
            if not check or attempt == CROP_ATTEMPTS - 1 or _is_balanced(window, self.ignore_index, self.cat_max_ratio):
                break
        return {
            "window": (top, left, src_h, src_w),
            "out_size": [out_h, out_w],
            "padding": [0, 0, self.size[1] - out_w, self.size[0] - out_h],  # left, top, right, bottom
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        out = self._call_kernel(F.resized_crop, inpt, *params["window"], size=params["out_size"], antialias=True)
        if any(params["padding"]):
            out = self._call_kernel(F.pad, out, padding=params["padding"], fill=self.fill.get(type(inpt), 0))
        return out


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
