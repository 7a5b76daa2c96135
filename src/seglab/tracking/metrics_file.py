"""Writing and printing final metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping


def write_json(data: Mapping, path: str | Path) -> Path:
    """Write ``data`` as indented JSON (NaN as null), creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_nan_to_none(data), indent=2) + "\n")
    return path


def _nan_to_none(value):
    if isinstance(value, Mapping):
        return {key: _nan_to_none(item) for key, item in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# Scores of the trimap (one per band width) and the prefix of a network's own scores beside post-processed ones.
TRIMAP, NETWORK, BAND_WIDTH = "trimap_mIoU", "network/", "band width (px)"


def format_metrics_table(metrics: Mapping[str, float], title: str) -> str:
    """A plain-text table: summary metrics first, then one row per class with a column per per-class score
    (``<stage>/IoU/<class>``, ``<stage>/Acc/<class>``, ``<stage>/AP/<class>``), then one row per trimap band
    width (``<stage>/trimap_mIoU/<w>``, and ``<stage>/network/trimap_mIoU/<w>`` beside a post-processed one)."""
    summary, per_class, per_width = {}, {}, {}
    for key, value in metrics.items():
        stage, _, name = key.partition("/")
        score, _, row = name.removeprefix(NETWORK).rpartition("/")
        if score == TRIMAP:
            per_width.setdefault(row, {})[name.removesuffix(f"/{row}")] = value
        elif key.count("/") == 1 or name.startswith(NETWORK):
            summary[key] = value
        else:
            per_class.setdefault(row, {})[score] = value
    width = max([len(key) for key in [*summary, *per_class]] + [len(title), len("class"), len(BAND_WIDTH)])
    lines = [title, "-" * (width + 10)]
    lines += [f"{key:<{width}}  {_fmt(value)}" for key, value in summary.items()]
    for heading, rows in (("class", per_class), (BAND_WIDTH, per_width)):
        columns = list(dict.fromkeys(score for scores in rows.values() for score in scores))
        if rows:
            lines += ["", f"{heading:<{width}}" + "".join(f"  {c:>8}" for c in columns), "-" * (width + 10 * len(columns))]
            lines += [f"{name:<{width}}" + "".join(f"  {_fmt(s.get(c)):>{max(8, len(c))}}" for c in columns) for name, s in rows.items()]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "     n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:8.4f}"
