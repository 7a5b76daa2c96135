"""A run directory belongs to one run: starting again in it is resuming it, and the command that does so.

``hydra.run.dir=<dir>`` naming a directory that already holds a run's results (checkpoints, metrics, logs) is
refused unless the run resumes from one of that directory's own checkpoints: otherwise its ``.hydra/``,
``resolved_config.yaml``, ``metrics.json`` and logs would be overwritten, and ``last.ckpt`` left beside a new
``last-v1.ckpt``. :class:`RefuseReusedRunDir` checks before Hydra writes anything; :func:`train` checks again for
multirun jobs and runs started from Python. Processes that share the run directory by design are not refused:
DDP ranks other than 0 and a SLURM job requeued into its own directory (which resumes by itself, see
:mod:`seglab.checkpointing.requeue`).
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from seglab.config.compose import override_key, quote_override_value, run_overrides
from seglab.runtime.errors import UserError, exit_with_message
from seglab.tracking.redaction import redact_command_line

# What a training run leaves in its directory (Hydra's .hydra/ and train.log are written before any check can run).
RUN_FILES = ("checkpoints", "resolved_config.yaml", "metrics.json", "csv", "tensorboard", "wandb", "mlflow")
# Environment variables that give a process's rank (Lightning's DDP launcher, torchrun, SLURM).
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK", "SLURM_PROCID")


def earlier_run_files(run_dir: Path) -> list[str]:
    """The names of the files and folders of an earlier run in ``run_dir``."""
    return [name for name in RUN_FILES if (run_dir / name).exists()]


def check_run_dir(run_dir: Path, ckpt_path: Path | None) -> None:
    """Refuse to start in a directory that holds an earlier run unless resuming from one of its checkpoints."""
    found = earlier_run_files(run_dir)
    if not found or _shares_the_run_dir():
        return
    if ckpt_path is not None and Path(run_dir).resolve() in Path(ckpt_path).resolve().parents:
        return
    held = f"hydra.run.dir={run_dir} holds an earlier run ({', '.join(found)})"
    if ckpt_path is not None:
        raise UserError(
            f"{held} and ckpt_path={ckpt_path} is not one of its checkpoints: resume that run with "
            f"ckpt_path={run_dir}, or resume {ckpt_path} into a new directory (another hydra.run.dir, or none)"
        )
    if not (run_dir / "checkpoints" / "last.ckpt").is_file():
        raise UserError(f"{held} without a checkpoint to resume: give another hydra.run.dir (or none), or delete it")
    raise UserError(
        f"{held}: resume it with ckpt_path={run_dir}, or give another hydra.run.dir (or none) for a new run"
    )


def _shares_the_run_dir() -> bool:
    restarted = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0
    return restarted or any(os.environ.get(name, "0") not in ("", "0") for name in RANK_VARIABLES)


def resume_command(run_dir: Path) -> str:
    """The command line that resumes this run into ``run_dir``: its own overrides (secrets masked) with
    ``ckpt_path`` and ``hydra.run.dir`` set to the run directory."""
    overrides = [o for o in run_overrides() if override_key(o) not in ("ckpt_path", "+ckpt_path")]
    script = sys.argv[0] if sys.argv and sys.argv[0].endswith(".py") else "train.py"
    value = str(run_dir) if re.fullmatch(r"[\w/.:@+-]+", str(run_dir)) else quote_override_value(str(run_dir))
    resume = [f"ckpt_path={value}", f"hydra.run.dir={value}"]
    return shlex.join(["python", script, *redact_command_line(overrides), *resume])


class RefuseReusedRunDir(Callback):
    """Hydra callback (``conf/hydra/default.yaml``): the check of :func:`check_run_dir`, before Hydra writes
    ``.hydra/`` into the run directory. Hydra turns what its callbacks raise into warnings, so the refusal prints
    its message and exits (status 2), like seglab's other user errors."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        if config.get("task_name") != "train" or not run_dir.exists():
            return
        ckpt_path = None
        try:
            if config.get("ckpt_path") is not None:
                from seglab.checkpointing.resume import find_checkpoint  # lazy: imports Lightning

                runs_dir = Path(config.paths.log_dir) / config.task_name / "runs"
                ckpt_path = find_checkpoint(str(config.ckpt_path), run_dir, runs_dir)
            check_run_dir(run_dir, ckpt_path)
        except UserError as err:
            exit_with_message(str(err), err)
