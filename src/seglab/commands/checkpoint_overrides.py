"""How the command line of eval.py, predict.py and ``python -m seglab.commands.export`` reaches the checkpoint's config.

These commands compose their own config (``conf/eval.yaml`` ...) on top of ``train.yaml``'s defaults, i.e. the
default semantic preset, before they know which checkpoint they serve; the config that builds the model is
composed afterwards from the checkpoint's training overrides, then the command line
(:func:`seglab.checkpointing.restore.training_config`). A key of the checkpoint's own preset, such as
``model.center_threshold`` of a Panoptic-DeepLab checkpoint, is missing from the default preset, and Hydra would
refuse it before the checkpoint is read ("Key 'center_threshold' is not in struct").

So :func:`checkpoint_command` hands Hydra each override of a training-config key with ``++`` (set or add, never
refused), and :func:`as_typed` gives :func:`~seglab.checkpointing.restore.training_config` the overrides back as they were
typed, to apply on top of the checkpoint's config: there a key that exists in neither config is still an error.
The command's own keys (``ckpt_path``, ``eval.*``, ...), ``hydra.*``, config groups (``inference=slide``) and
deletions (``~key``) reach Hydra unchanged.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig

from seglab.commands.entry import hydra_entry
from seglab.config.compose import CONFIG_DIR

# The command line of this process's checkpoint command as typed (set by checkpoint_command).
_typed: list[str] = []


def _parsed(argument: str) -> Any:
    """The Hydra override an argument is, or ``None`` (flags such as ``-m``, and anything Hydra cannot parse)."""
    if argument.startswith("-") or "=" not in argument:
        return None
    try:
        return OverridesParser.create().parse_override(argument)
    except HydraException:
        return None


def _deferred(argument: str, command_keys: Sequence[str]) -> bool:
    """Whether Hydra gets ``argument`` with ``++``: a plain or ``+`` override of a training-config key."""
    override = _parsed(argument)
    if override is None or override.is_delete() or override.is_force_add() or override.package is not None:
        return False
    key = override.key_or_group
    return key.split(".")[0] not in (*command_keys, "hydra") and not (Path(CONFIG_DIR) / key).is_dir()


def defer_to_checkpoint(arguments: Sequence[str], command_keys: Sequence[str]) -> list[str]:
    """The command line as the command's own config composes it (see the module docstring)."""
    return [f"++{a.lstrip('+')}" if _deferred(a, command_keys) else a for a in arguments]


def as_typed(overrides: Sequence[str]) -> list[str]:
    """A run's overrides (:func:`seglab.config.compose.run_overrides`, one job's values in a multirun) with the prefix each
    had on the command line: ``++model.center_threshold=0.0`` is ``model.center_threshold=0.0`` again if typed so.
    Unchanged outside :func:`checkpoint_command` (tests compose the config themselves)."""
    prefixes = {}
    for argument in _typed:
        override = _parsed(argument)
        if override is not None:
            prefixes[override.key_or_group] = argument[: len(argument) - len(argument.lstrip("+"))]
    typed = []
    for item in overrides:
        override = _parsed(item)
        key = override.key_or_group if override is not None else None
        typed.append(prefixes[key] + item[2:] if item.startswith("++") and key in prefixes else item)
    return typed


def checkpoint_command(
    config_name: str, command_keys: Sequence[str]
) -> Callable[[Callable[[DictConfig], Any]], Callable[[], Any]]:
    """:func:`~seglab.commands.entry.hydra_entry` for a command that rebuilds a checkpoint's run,
    ``command_keys`` being the top-level keys of its own config: see the module docstring."""

    def decorate(task: Callable[[DictConfig], Any]) -> Callable[[], Any]:
        @functools.wraps(task)  # Hydra names the job after the task's file (eval.py: eval)
        def run(cfg: DictConfig) -> Any:
            sys.argv[1:] = _typed  # Lightning's DDP launcher starts the other ranks with the command as typed
            return task(cfg)

        hydra_main = hydra_entry(config_name)(run)

        @functools.wraps(task)
        def main() -> Any:
            _typed[:] = sys.argv[1:]
            sys.argv[1:] = defer_to_checkpoint(_typed, command_keys)
            try:
                return hydra_main()
            finally:
                sys.argv[1:] = _typed

        return main

    return decorate
