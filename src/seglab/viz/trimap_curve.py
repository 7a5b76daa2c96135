"""The trimap curve of DeepLab v1 (Fig. 5) and v3+ (Fig. 5(a)): mIoU in a band around the ground truth's label
changes against the band's width, one line per prediction (e.g. the network's, and after a dense CRF)."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from seglab.viz.panels import figure_pixels

# Logged name of a trimap score: <prefix>trimap_mIoU/<width>.
TRIMAP_KEY = "trimap_mIoU/"


def curve_prefixes(prefix: str, postprocessed: bool) -> dict[str, str]:
    """``{label: key prefix}`` of the curves a run logs under ``prefix`` (``"val/"``): the prediction's, and with a
    post-processing (a dense CRF) the network's own beside it (``<prefix>network/``)."""
    if not postprocessed:
        return {"network": prefix}
    return {"network": f"{prefix}network/", "network + dense CRF": prefix}


def trimap_curves(scores: Mapping[str, float], prefixes: Mapping[str, str]) -> dict[str, dict[int, float]]:
    """``{label: {width: mIoU}}`` from logged scores, one curve per ``{label: key prefix}`` that has any (e.g.
    ``{"after CRF": "val/", "network": "val/network/"}``)."""
    curves = {}
    for label, prefix in prefixes.items():
        start = prefix + TRIMAP_KEY
        points = {int(key[len(start) :]): float(value) for key, value in scores.items() if key.startswith(start)}
        if points:
            curves[label] = dict(sorted(points.items()))
    return curves


def trimap_curve_image(curves: Mapping[str, Mapping[int, float]], title: str = "") -> np.ndarray:
    """The curves as an RGB image (HxWx3 uint8): band width (pixels) on x, mIoU in the band on y, each point
    labelled with its value; a width without a score (no class in its band) is left out of its line."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.2), dpi=100)
    axes = figure.add_subplot()
    widths = sorted({width for curve in curves.values() for width in curve})
    lines = {label: [(w, v) for w, v in sorted(curve.items()) if not math.isnan(v)] for label, curve in curves.items()}
    top: dict[int, float] = {}
    for points in lines.values():
        for w, v in points:
            top[w] = max(top.get(w, v), v)
    values = []
    for label, points in lines.items():
        if not points:
            continue
        x, y = zip(*points)
        values += y
        (line,) = axes.plot(x, y, marker="o", label=label)
        for w, v in points:  # the top line's values above it, the others' below theirs
            offset = (0, 7) if v >= top[w] else (0, -13)
            axes.annotate(f"{v:.3f}", (w, v), textcoords="offset points", xytext=offset, ha="center", fontsize=7,
                          color=line.get_color())  # fmt: skip
    axes.set_xscale("symlog", linthresh=2)  # the narrow bands, where the curves differ most, get room
    axes.set_xticks(widths, [str(w) for w in widths])
    axes.set_xlabel("band width around ground-truth label changes (pixels)")
    axes.set_ylabel("mIoU within the band")
    if values:  # zoomed to the curves (their differences are often a few points), within [0, 1]
        low, high = min(values), max(values)
        margin = max(0.05, 0.15 * (high - low))
        axes.set_ylim(max(0.0, low - margin), min(1.0, high + margin))
    axes.grid(alpha=0.3)
    if values:  # curves that are all NaN (a band no image has) draw no line to name
        axes.legend(loc="best")
    axes.set_title(title or "Trimap mIoU", fontsize=10)
    figure.tight_layout()
    return figure_pixels(figure)
