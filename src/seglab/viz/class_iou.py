"""The per-class IoU bar chart: one bar per class, its value at the bar's end, the mean (mIoU) as a dashed line.
Classes without a score (absent from both ground truth and prediction) are marked ``n/a`` rather than drawn as 0."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from seglab.viz.panels import figure_pixels


def class_iou_chart(class_names: Sequence[str], ious: Sequence[float | None], title: str = "") -> np.ndarray:
    """Horizontal bars (classes top to bottom in their index order) as an HxWx3 uint8 image under ``title``."""
    from matplotlib.figure import Figure

    values = [math.nan if v is None else float(v) for v in ious]
    scored = [v for v in values if not math.isnan(v)]
    mean = sum(scored) / len(scored) if scored else math.nan
    n = len(class_names)
    figure = Figure(figsize=(7.0, 1.2 + 0.28 * n), dpi=90)
    axes = figure.add_subplot()
    rows = np.arange(n)
    axes.barh(rows, [0.0 if math.isnan(v) else v for v in values], color="#4c72b0", height=0.7)
    for row, value in zip(rows, values):
        label = "n/a" if math.isnan(value) else f"{value:.3f}"
        axes.text((0.0 if math.isnan(value) else value) + 0.01, row, label, va="center", fontsize=8)
    if scored:
        axes.axvline(mean, color="#c44e52", linestyle="--", linewidth=1.2, label=f"mIoU {mean:.3f}")
        axes.legend(loc="lower right", fontsize=8)
    axes.set_yticks(rows, list(class_names), fontsize=8)
    axes.invert_yaxis()  # class 0 on top, as in the tables
    axes.set_xlim(0.0, 1.08)
    axes.set_xlabel("IoU")
    axes.grid(axis="x", alpha=0.3)
    axes.set_title(title or "per-class IoU", fontsize=10)
    figure.tight_layout()
    return figure_pixels(figure)
