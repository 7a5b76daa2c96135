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
    """A plain-text table: summary metrics first, then one row per class with its IoU and accuracy
    (from ``<stage>/IoU/<class>`` and ``<stage>/Acc/<class>`` entries)."""
    summary = {key: value for key, value in metrics.items() if key.count("/") == 1}
    per_class: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split("/", 2)
        if len(parts) == 3 and parts[1] in ("IoU", "Acc"):
            per_class.setdefault(parts[2], {})[parts[1]] = value
    width = max([len(key) for key in [*summary, *per_class]] + [len(title), len("class")])
    lines = [title, "-" * (width + 10)]
    lines += [f"{key:<{width}}  {_fmt(value)}" for key, value in summary.items()]
    if per_class:
        lines += ["", f"{'class':<{width}}  {'IoU':>8}  {'Acc':>8}", "-" * (width + 20)]
        lines += [f"{name:<{width}}  {_fmt(s.get('IoU'))}  {_fmt(s.get('Acc'))}" for name, s in per_class.items()]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "     n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:8.4f}"
