"""The leaderboard printed at the end of a Hydra multirun: its jobs sorted by the optimized metric.

Each job's score is read from its ``metrics.json``, so jobs run by any launcher (local processes, Slurm) count.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def collect_jobs(sweep_dir: Path, metric: str) -> list[dict[str, Any]]:
    """One entry per job directory of the sweep: its path, overrides and ``metric`` (None when it has none)."""
    jobs = []
    for overrides_file in sorted(sweep_dir.rglob(".hydra/overrides.yaml")):
        job_dir = overrides_file.parent.parent
        metrics_file = job_dir / "metrics.json"
        value = json.loads(metrics_file.read_text()).get(metric) if metrics_file.is_file() else None
        jobs.append({"dir": job_dir.relative_to(sweep_dir).as_posix(), "overrides": yaml.safe_load(overrides_file.read_text()) or [], "value": value})
    return jobs


def format_leaderboard(jobs: list[dict[str, Any]], metric: str, mode: str = "max") -> str:
    """A table of the jobs, best first; overrides shared by every job are left out, jobs without a score last."""
    common = set.intersection(*(set(job["overrides"]) for job in jobs)) if jobs else set()
    scored = [job for job in jobs if isinstance(job["value"], (int, float)) and not math.isnan(job["value"])]
    scored.sort(key=lambda job: job["value"], reverse=mode == "max")
    unscored = [job for job in jobs if job not in scored]
    width = max([len(job["dir"]) for job in jobs] + [3])
    lines = [f"Leaderboard ({metric}, {'higher' if mode == 'max' else 'lower'} is better)", f"{'#':>3}  {'job':<{width}}  {metric:>10}  overrides"]
    for rank, job in enumerate(scored + unscored, start=1):
        value = f"{job['value']:10.4f}" if job in scored else f"{'no score':>10}"
        varying = " ".join(o for o in job["overrides"] if o not in common)
        lines.append(f"{rank:>3}  {job['dir']:<{width}}  {value}  {varying}")
    if unscored:
        lines.append(f"{len(unscored)} job(s) wrote no {metric} to metrics.json (failed or interrupted; see their logs)")
    return "\n".join(lines)


class Leaderboard(Callback):
    """Hydra callback: after a multirun, print the leaderboard and write it to ``<sweep dir>/leaderboard.txt``.

    Args:
        metric: the metric to rank by (``optimized_metric``).
        mode: ``max`` or ``min``.
    """

    def __init__(self, metric: str = "val/mIoU", mode: str = "max") -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"leaderboard mode must be max or min, not {mode!r}")
        self.metric = metric
        self.mode = mode

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = format_leaderboard(collect_jobs(sweep_dir, self.metric), self.metric, self.mode)
        (sweep_dir / "leaderboard.txt").write_text(table + "\n")
        log.info("%s\n(%s)", table, sweep_dir / "leaderboard.txt")
