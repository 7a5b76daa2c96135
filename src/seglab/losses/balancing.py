"""Class weights from label frequencies, for ``loss.class_weights=auto`` (see :mod:`seglab.losses.class_weights`).

A class without a single labelled pixel gets weight 0: it never appears in a target, so its weight changes
nothing, and an infinite weight would break the losses that average over classes.
"""

from __future__ import annotations

import numpy as np

METHODS = ("median_frequency", "inverse_frequency")


def median_frequency_weights(pixels: np.ndarray, image_pixels: np.ndarray) -> np.ndarray:
    """Median-frequency balancing (Eigen & Fergus, 2015; SegNet): ``w_c = median(freq) / freq_c``.

    ``freq_c`` is the pixels of class ``c`` divided by the labelled pixels of the images where ``c`` appears;
    the median is over the classes that appear. The class of median frequency gets weight 1.
    """
    present = pixels > 0
    freq = np.divide(pixels, image_pixels, out=np.zeros(len(pixels)), where=present)
    return np.divide(np.median(freq[present]), freq, out=np.zeros(len(pixels)), where=present)


def inverse_frequency_weights(pixels: np.ndarray) -> np.ndarray:
    """Inverse-frequency balancing: ``w_c = total / (K * pixels_c)`` over the ``K`` classes that appear, so that
    every class carries the same total weight and equally frequent classes all get weight 1."""
    present = pixels > 0
    return np.divide(pixels.sum(), present.sum() * pixels.astype(np.float64), out=np.zeros(len(pixels)), where=present)


def balanced_class_weights(method: str, pixels: np.ndarray, image_pixels: np.ndarray) -> np.ndarray:
    """The weights of ``method`` (one of :data:`METHODS`)."""
    if method == "median_frequency":
        return median_frequency_weights(pixels, image_pixels)
    if method == "inverse_frequency":
        return inverse_frequency_weights(pixels)
    raise ValueError(f"unknown class-weighting method {method!r}; expected one of {METHODS}")
