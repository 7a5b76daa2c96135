"""Reading images and label maps with clear errors (the file is always named)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import tv_tensors

from seglab.runtime.errors import UserError

LABEL_MODES = ("L", "P", "I", "I;16")


def read_image(path: str | Path, mode: str = "RGB") -> np.ndarray:
    """Decode an image file to a uint8 array (HxWx3 for RGB). Pillow's decompression-bomb limit stays on."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None


def read_label(path: str | Path, rgb: bool = False) -> np.ndarray:
    """Decode a label map to its raw values: grey levels or palette indices (HxW uint8), 16-bit values (HxW int32).

    With ``rgb=True`` colour-coded label maps are accepted too and come back as HxWx3 uint8.
    """
    try:
        with Image.open(path) as image:
            if image.mode not in LABEL_MODES and not (rgb and image.mode == "RGB"):
                expected = "a single-channel, palette or RGB PNG" if rgb else "a single-channel or palette PNG"
                raise UserError(f"label map {path} has mode {image.mode}; expected {expected}")
            values = np.asarray(image)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read label map {path}: {err}") from None
    return values if values.dtype == np.uint8 else values.astype(np.int32)


def image_tensor(image: np.ndarray) -> tv_tensors.Image:
    """An HxWx3 uint8 array as a 3xHxW ``tv_tensors.Image`` (a copy: decoded arrays may be read-only)."""
    return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))


def model_input(image: np.ndarray, transforms: Callable | None, device: torch.device) -> torch.Tensor:
    """An HxWx3 uint8 image as a model's input batch (1x3xHxW on ``device``) after the data's input transforms."""
    sample = {"image": image_tensor(image)}
    if transforms is not None:
        sample = transforms(sample)
    return sample["image"].unsqueeze(0).to(device)
