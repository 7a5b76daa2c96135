"""What a dashboard records about a run: the resolved config (flattened), the config group choices, the git
state, parameter counts and the command line, all free of secrets."""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from torch import nn

from seglab.tracking.redaction import redact, redact_command_line

log = logging.getLogger(__name__)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.01}}`` -> ``{"optimizer.lr": 0.01}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def config_choices() -> dict[str, Any]:
    """The option picked in each config group (``model/decoder: aspp``), as in a sweep's parameter names."""
    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {group: choice for group, choice in choices.items() if not group.startswith("hydra")}


def git_state(path: str | Path = Path(__file__).parent) -> dict[str, Any]:
    """``git/commit`` and ``git/dirty`` of the repository holding ``path`` (None outside a git checkout)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], capture_output=True, text=True, check=True, timeout=10).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError):
        log.debug("no git state for %s", path, exc_info=True)
        return {"git/commit": None, "git/dirty": None}
    return {"git/commit": commit, "git/dirty": dirty}


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Total and trainable parameters, and the parameters of each part of the network (backbone, decoder, ...)."""
    counts = {
        "params/total": sum(p.numel() for p in model.parameters()),
        "params/trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    network = getattr(model, "net", model)
    counts.update({f"params/{name}": sum(p.numel() for p in part.parameters()) for name, part in network.named_children()})
    return counts


def command_line() -> str:
    """The command that started this process, with secret overrides masked."""
    return shlex.join(["python", *redact_command_line(sys.argv)])


def describe_run(cfg: DictConfig, model: nn.Module) -> dict[str, Any]:
    """Everything a dashboard shows about a run as one flat, secret-free dict (the loggers' hyperparameters)."""
    description = flatten(redact(OmegaConf.to_container(cfg, resolve=True)))
    description.update(config_choices())
    description.update(git_state())
    description.update(parameter_counts(model))
    description["command"] = command_line()
    return description
