"""Time the first run (``make train``: ``python train.py experiment=quickstart``) end to end, several times; report
the wall time of the whole command (start-up included) and its final val/mIoU as min / median / max, and the load.

    python benchmarks/quickstart.py [--runs 3] [extra overrides ...]

The figures quoted in benchmarks/README.md. Run it on an otherwise idle machine: the load average before and after
each run is printed, so a busy machine shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def one_run(overrides: list[str]) -> tuple[float, float]:
    """(wall seconds, final val/mIoU) of one ``train.py experiment=quickstart`` in a fresh process."""
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "train.py"), "experiment=quickstart", f"hydra.run.dir={run_dir}", *overrides],
            check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        seconds = time.perf_counter() - start
        return seconds, json.loads((Path(run_dir) / "metrics.json").read_text())["val/mIoU"]


def spread(values: list[float], unit: str = "") -> str:
    return f"min {min(values):.4g}{unit}, median {statistics.median(values):.4g}{unit}, max {max(values):.4g}{unit}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="train.py overrides on top of experiment=quickstart")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch threads, torch {torch.__version__}")  # fmt: skip
    print(f"python train.py experiment=quickstart {' '.join(args.overrides)}".rstrip())
    seconds, scores = [], []
    for index in range(args.runs):
        before = load_average()
        wall, miou = one_run(args.overrides)
        seconds.append(wall)
        scores.append(miou)
        print(f"run {index + 1}: {wall:.0f} s, val/mIoU {miou:.4f} (load average before {before}, after {load_average()})")
    print(f"wall time: {spread(seconds, ' s')}")
    print(f"final val/mIoU: {spread(scores)}")


if __name__ == "__main__":
    main()
