"""Time the first run (``make train``: ``python train.py experiment=quickstart``) end to end; report its final val/mIoU.

    python benchmarks/quickstart.py [extra overrides ...]

The figure quoted in benchmarks/README.md: wall time of the whole command (start-up included) and the final val/mIoU.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    with tempfile.TemporaryDirectory() as run_dir:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, str(REPO / "train.py"), "experiment=quickstart", f"hydra.run.dir={run_dir}", *sys.argv[1:]],
            check=True,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - start
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"python train.py experiment=quickstart {' '.join(sys.argv[1:])}".rstrip())
    print(f"wall time: {seconds:.0f} s ({seconds / 60:.1f} min), final val/mIoU: {metrics['val/mIoU']:.4f}")


if __name__ == "__main__":
    main()
