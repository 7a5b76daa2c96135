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


def format_metrics_table(metrics: Mapping[str, float], title: str) -> str:
    """A plain-text table: summary metrics first, then one row per class with a column per per-class score
    (``<stage>/IoU/<class>``, ``<stage>/Acc/<class>``, ``<stage>/AP/<class>``)."""
    summary = {key: value for key, value in metrics.items() if key.count("/") == 1}
    per_class: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split("/", 2)
        if len(parts) == 3:
            per_class.setdefault(parts[2], {})[parts[1]] = value
    columns = list(dict.fromkeys(score for scores in per_class.values() for score in scores))
    width = max([len(key) for key in [*summary, *per_class]] + [len(title), len("class")])
    lines = [title, "-" * (width + 10)]
    lines += [f"{key:<{width}}  {_fmt(value)}" for key, value in summary.items()]
    if per_class:
        lines += ["", f"{'class':<{width}}" + "".join(f"  {c:>8}" for c in columns), "-" * (width + 10 * len(columns))]
        lines += [f"{name:<{width}}" + "".join(f"  {_fmt(s.get(c))}" for c in columns) for name, s in per_class.items()]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "     n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:8.4f}"
