"""Reading images and label maps with clear errors (the file is always named)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import tv_tensors

from seglab.errors import UserError


def read_image(path: str | Path, mode: str = "RGB") -> np.ndarray:
    """Decode an image file to a uint8 array (HxWx3 for RGB). Pillow's decompression-bomb limit stays on."""
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode))
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read image {path}: {err}") from None


def read_label(path: str | Path) -> np.ndarray:
    """Decode a label PNG to its raw values (HxW uint8): grey levels, or palette indices for palette PNGs."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "I", "I;16"):
                raise UserError(f"label map {path} has mode {image.mode}; expected a single-channel or palette PNG")
            return np.asarray(image).astype(np.uint8, copy=False)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise UserError(f"cannot read label map {path}: {err}") from None


def image_tensor(image: np.ndarray) -> tv_tensors.Image:
    """An HxWx3 uint8 array as a 3xHxW ``tv_tensors.Image`` (a copy: decoded arrays may be read-only)."""
    return tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))))
