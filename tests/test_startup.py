"""``--help`` and ``--cfg job`` start fast: every way of starting a command leaves torch and Lightning unimported.

Each command runs in a fresh interpreter that reports, as it exits, which of the heavy libraries it imported
(benchmarks/startup.py measures the time this saves).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("lightning", "torch", "segmentation_models_pytorch", "timm")
# Starts a command the way its kind of launcher does, and prints the heavy modules loaded when the process exits.
PROBE = f"""
import atexit, runpy, sys
atexit.register(lambda: print("heavy imports:", sorted(n for n in {HEAVY!r} if n in sys.modules)))
kind, target, *sys.argv[1:] = sys.argv[1:]
if kind == "script":  # python train.py ...
    sys.argv[0] = target
    runpy.run_path(target, run_name="__main__")
elif kind == "module":  # python -m seglab <command> ...
    runpy.run_module(target, run_name="__main__", alter_sys=True)
else:  # a seglab-<command> console script: sys.exit(seglab.commands.entry:<target>())
    import seglab.commands.entry as entry
    sys.exit(getattr(entry, target)())
"""


@pytest.mark.parametrize(
    ("kind", "target", "args"),
    [
        ("script", "train.py", ["--help"]),
        ("script", "train.py", ["--cfg", "job", "model=deeplabv3", "logger=wandb"]),
        ("script", "eval.py", ["--cfg", "job"]),
        ("script", "predict.py", ["--help"]),
        ("module", "seglab", ["export", "--cfg", "job"]),
        ("entry", "report_main", ["--help"]),
    ],
)
def test_help_and_cfg_job_import_neither_torch_nor_lightning(kind, target, args, tmp_path):
    script = str(REPO / target) if kind == "script" else target
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE, kind, script, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert ("powered by Hydra" if "--help" in args else "task_name:") in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "heavy imports: []"
