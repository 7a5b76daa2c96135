"""Class colours: colour masks and overlays of predictions on their images."""

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


def colorize(classes: np.ndarray, palette: Palette) -> np.ndarray:
    """HxW class indices -> HxWx3 uint8 colours; indices without a colour (e.g. ignore) become black."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(palette)] = np.asarray(palette, dtype=np.uint8)[:256]
    return table[classes.astype(np.uint8, copy=False)]


def overlay(image: np.ndarray, colours: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend HxWx3 uint8 ``colours`` over the HxWx3 uint8 ``image`` with opacity ``alpha``."""
    blended = (1 - alpha) * image.astype(np.float32) + alpha * colours.astype(np.float32)
    return blended.round().astype(np.uint8)
