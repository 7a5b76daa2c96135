"""Class colours, the one convention of every picture seglab makes (predict.py's colour masks, eval.py's ``color``
export, the dashboard panels): the dataset's palette (``data.palette``, e.g. Cityscapes' official colours), else the
PASCAL VOC colour map (:func:`default_palette`). Ignored pixels have no colour: black in a colour mask, the image
itself in an overlay."""

from __future__ import annotations

from typing import Sequence

import numpy as np

Palette = Sequence[Sequence[int]]


def default_palette(num_classes: int) -> list[tuple[int, int, int]]:
    """Distinct colours for datasets without official ones: the PASCAL VOC colour map (class 0 is black).

    The bits of the class index are dealt out to R, G and B in turn, most significant colour bits first.
    """
    palette = []
    for index in range(num_classes):
        rgb = [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
        palette.append((rgb[0], rgb[1], rgb[2]))
    return palette


def _coloured(classes: np.ndarray, palette: Palette) -> np.ndarray:
    """Where ``classes`` (HxW integers) name a class of ``palette``."""
    return (classes >= 0) & (classes < len(palette))


def colorize(classes: np.ndarray, palette: Palette) -> np.ndarray:
    """HxW class indices -> HxWx3 uint8 colours; indices without a colour (ignore, 255) become black."""
    table = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    colours = np.zeros((*classes.shape, 3), dtype=np.uint8)
    inside = _coloured(classes, palette)
    colours[inside] = table[classes[inside]]
    return colours


def overlay(image: np.ndarray, classes: np.ndarray, palette: Palette, alpha: float = 0.5) -> np.ndarray:
    """The colours of ``classes`` (HxW) blended over ``image`` (HxWx3 uint8) with opacity ``alpha``; pixels without a
    colour (ignore) keep the image."""
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colorize(classes, palette).astype(np.float32)
    return np.where(_coloured(classes, palette)[..., None], blended.round().astype(np.uint8), image)
