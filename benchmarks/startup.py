"""Start-up cost of seglab's commands against a bare Hydra app composing the same configs (process CPU time).

    python benchmarks/startup.py [--runs 5] [--checkout DIR]

Each command runs ``--runs`` times in a fresh interpreter; its CPU time (user + system, from
``resource.getrusage(RUSAGE_CHILDREN)``) is the median over the runs, so other work on the machine changes the
figures less than wall-clock time would. The reference is a bare ``@hydra.main`` app, written to a temporary file,
that composes the checkout's ``conf/train.yaml`` and does nothing (what Hydra itself costs); it runs in the same
rounds as each command, and each ratio is to its median of those rounds. The target is
``train.py --help`` within 1.5x of it. ``--checkout`` measures another checkout of seglab (e.g. an older one) with
the same reference, to compare: a command it does not have is shown as ``-``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BARE_APP = """import hydra


@hydra.main(version_base="1.3", config_path={conf!r}, config_name="train")
def main(cfg):
    pass


main()
"""
# (what is measured, the command line after `python`, the exit status it must end with)
COMMANDS = [
    ("train.py --help", ["train.py", "--help"], 0),
    ("train.py --cfg job", ["train.py", "--cfg", "job"], 0),
    ("eval.py --help", ["eval.py", "--help"], 0),
    ("predict.py --help", ["predict.py", "--help"], 0),
    ("python -m seglab train --help", ["-m", "seglab", "train", "--help"], 0),
    ("train.py data.batch_sze=8 (misspelt key)", ["train.py", "data.batch_sze=8"], 2),
    # A real run imports torch and Lightning when it starts; refused at its first check, it shows that cost.
    ("train.py optimizer.lr=-1 (a run, refused)", ["train.py", "optimizer.lr=-1"], 2),
]


def cpu_seconds(argv: list[str], cwd: Path, env: dict[str, str], status: int) -> float | None:
    """The CPU time of one run of ``python <argv>``; None when it does not end with ``status``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != status:
        return None
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def checkout_env(checkout: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(checkout / "src"), "PYTHONWARNINGS": "ignore", "HYDRA_FULL_ERROR": "0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per command (the median is shown)")
    parser.add_argument("--checkout", type=Path, help="another seglab checkout to measure the same way")
    args = parser.parse_args()
    checkouts = [REPO, *([args.checkout.resolve()] if args.checkout else [])]

    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}; median of {args.runs}")
    with tempfile.TemporaryDirectory() as scratch:
        bare = Path(scratch) / "bare_app.py"
        bare.write_text(BARE_APP.format(conf=str(REPO / "conf")))
        header = "".join(f" {c.name[:18]:>18s}" for c in checkouts)
        print(f"{'command':48s} {'bare app':>8s}{header}   (CPU s, x the bare app's in the same rounds)")
        for name, argv, status in COMMANDS:
            reference: list[float | None] = []
            times: dict[Path, list[float | None]] = {checkout: [] for checkout in checkouts}
            for _ in range(args.runs):  # the reference and the checkouts in turn: a change of load hits all alike
                reference.append(cpu_seconds([str(bare), "--help"], Path(scratch), checkout_env(REPO), 0))
                for checkout in checkouts:
                    with tempfile.TemporaryDirectory() as cwd:  # the run folders of the commands go there
                        full = [str(checkout / argv[0]), *argv[1:]] if argv[0].endswith(".py") else argv
                        env = {**checkout_env(checkout), "SEGLAB_OUTPUT_DIR": cwd}
                        times[checkout].append(cpu_seconds(full, Path(cwd), env, status))
            bare_seconds = statistics.median(reference)
            cells = [
                "-" if None in runs else f"{statistics.median(runs):6.2f} ({statistics.median(runs) / bare_seconds:4.1f}x)"
                for runs in times.values()
            ]
            print(f"{name:48s} {bare_seconds:8.2f}" + "".join(f" {cell:>18s}" for cell in cells))

if __name__ == "__main__":
    main()
