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
    """A plain-text table: summary metrics first, then one section per per-class score (``<stage>/IoU/<class>``,
    ``<stage>/AP/<class>``)."""
    summary = {key: value for key, value in metrics.items() if key.count("/") == 1}
    per_class: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        if key.count("/") >= 2:
            _, score, name = key.split("/", 2)
            per_class.setdefault(score, {})[name] = value
    width = max([len(key) for key in [*summary, *(n for names in per_class.values() for n in names)]] + [len(title)])
    lines = [title, "-" * (width + 10)]
    lines += [f"{key:<{width}}  {_fmt(value)}" for key, value in summary.items()]
    for score, values in per_class.items():
        lines += ["", f"{f'class ({score})':<{width}}", "-" * (width + 10)]
        lines += [f"{name:<{width}}  {_fmt(value)}" for name, value in values.items()]
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "     n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:8.4f}"
