"""The one way a seglab command is built: ``command_entry("eval", "seglab.commands.evaluate")`` is its ``main()``.

``main()`` composes ``conf/<config_name>.yaml`` with the command line (``@hydra.main``) and calls ``run(cfg)`` of the
command's module, imported only then (so ``--help`` and ``--cfg job`` need none of the command's imports). A
:class:`~seglab.runtime.errors.UserError` raised by the command and Hydra's composition errors (a misspelt key, an
unknown option, an override it cannot parse) print one line ``error: ...`` and exit with status 2. The root
``train.py`` / ``eval.py`` / ``predict.py``, ``python -m seglab <command>`` and the ``seglab-*`` console scripts all
call these entries (:data:`COMMANDS`).

Commands that rebuild a checkpoint's run (``rebuilds_checkpoint=True``: eval, predict, export) compose their own
config on top of ``train.yaml``'s defaults, i.e. the default semantic preset, before they know which checkpoint they
serve; the config that builds the model is composed afterwards from the checkpoint's training overrides, then the
command line (:func:`seglab.checkpointing.restore.training_config`). A key of the checkpoint's own preset, such as
``model.center_threshold`` of a Panoptic-DeepLab checkpoint, is missing from the default preset, and Hydra would
refuse it before the checkpoint is read ("Key 'center_threshold' is not in struct"). So such a command hands Hydra
each override of a training-config key with ``++`` (set or add, never refused), and :func:`as_typed` gives
``training_config`` the overrides back as they were typed, to apply on top of the checkpoint's config: there a key
that exists in neither config is still an error. The command's own keys (:func:`seglab.config.compose.command_keys`:
``ckpt_path``, ``eval.*``, ...), ``hydra.*``, config groups (``inference=slide``) and deletions (``~key``) reach Hydra
unchanged.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from seglab.config.compose import CONFIG_DIR, command_keys

# The command line of this process's command as typed (set by the entry's main()).
_typed: list[str] = []
# What precedes the typed overrides on the command line: ["train"] under ``python -m seglab train``. Lightning's DDP
# launcher starts the other ranks with sys.argv, so the entry puts it back before the command runs.
_prefix: list[str] = []


def _parsed(argument: str) -> Any:
    """The Hydra override an argument is, or ``None`` (flags such as ``-m``, and anything Hydra cannot parse)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    if argument.startswith("-") or "=" not in argument:
        return None
    try:
        return OverridesParser.create().parse_override(argument)
    except HydraException:
        return None


def _deferred(argument: str, own_keys: Sequence[str]) -> bool:
    """Whether Hydra gets ``argument`` with ``++``: a plain or ``+`` override of a training-config key."""
    override = _parsed(argument)
    if override is None or override.is_delete() or override.is_force_add() or override.package is not None:
        return False
    key = override.key_or_group
    return key.split(".")[0] not in (*own_keys, "hydra") and not (Path(CONFIG_DIR) / key).is_dir()


def defer_to_checkpoint(arguments: Sequence[str], own_keys: Sequence[str]) -> list[str]:
    """The command line as a checkpoint command's own config composes it (see the module docstring)."""
    return [f"++{a.lstrip('+')}" if _deferred(a, own_keys) else a for a in arguments]


def as_typed(overrides: Sequence[str]) -> list[str]:
    """A run's overrides (:func:`seglab.config.compose.run_overrides`, one job's values in a multirun) with the prefix
    each had on the command line: ``++model.center_threshold=0.0`` is ``model.center_threshold=0.0`` again if typed so.
    Unchanged outside an entry (tests compose the config themselves)."""
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


def command_entry(config_name: str, module: str, rebuilds_checkpoint: bool = False) -> Callable[[], None]:
    """The ``main()`` of the command whose config is ``conf/<config_name>.yaml`` and whose ``run(cfg)`` is in
    ``module``; ``rebuilds_checkpoint``: the command serves a checkpoint (see the module docstring)."""

    def task(cfg: Any) -> Any:
        from seglab.runtime.console import quiet_console

        sys.argv[1:] = [*_prefix, *_typed]  # the other DDP ranks start with the command as typed
        command = importlib.import_module(module)  # imports Lightning, whose own console handler quiet_console removes
        quiet_console()
        return command.run(cfg)

    # Hydra names the job (its log file, hydra.job.name) after the last part of the task's module: eval, predict, ...
    task.__module__ = f"seglab.commands.{config_name}"
    app: Callable[[], None] | None = None

    def main() -> None:
        nonlocal app
        import hydra

        from seglab.config.hydra_errors import one_line_errors
        from seglab.runtime.errors import exit_on_user_error

        if app is None:
            app = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(exit_on_user_error(task))
        _typed[:] = sys.argv[1:]
        if rebuilds_checkpoint:
            sys.argv[1:] = defer_to_checkpoint(_typed, command_keys(config_name))
        try:
            with one_line_errors():
                app()
        finally:
            sys.argv[1:] = [*_prefix, *_typed]

    main.__doc__ = f"Run ``{config_name}`` with the command line's overrides (``--help`` lists the options)."
    return main


train_main = command_entry("train", "seglab.commands.train")
eval_main = command_entry("eval", "seglab.commands.evaluate", rebuilds_checkpoint=True)
predict_main = command_entry("predict", "seglab.commands.predict", rebuilds_checkpoint=True)
export_main = command_entry("export", "seglab.commands.export", rebuilds_checkpoint=True)
report_main = command_entry("report", "seglab.commands.report")

# python -m seglab <command>, the seglab-<command> console scripts: what each command does.
COMMANDS: dict[str, tuple[Callable[[], None], str]] = {
    "train": (train_main, "train a model (conf/train.yaml)"),
    "eval": (eval_main, "score a checkpoint on a split (conf/eval.yaml)"),
    "predict": (predict_main, "segment images with a checkpoint (conf/predict.yaml)"),
    "export": (export_main, "export a checkpoint to ONNX or TorchScript (conf/export.yaml)"),
    "report": (report_main, "a model's parameters, GFLOPs and receptive field (conf/report.yaml)"),
}


def dispatch(argv: Sequence[str]) -> None:
    """``python -m seglab <command> [overrides]``: run ``<command>`` with the rest of the command line."""
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        print(f"error: {argv[0]!r} is not a seglab command; use one of {', '.join(COMMANDS)} (python -m seglab --help)",
              file=sys.stderr)
        raise SystemExit(2)
    if not argv or argv[0] not in COMMANDS:
        width = max(map(len, COMMANDS))
        listing = "\n".join(f"  {name:<{width}}  {about}" for name, (_, about) in COMMANDS.items())
        print(f"usage: python -m seglab <command> [overrides]   (or seglab-<command>; <command> --help: its options)"
              f"\n\ncommands:\n{listing}")
        return
    _prefix[:] = [argv[0]]
    sys.argv[1:] = argv[1:]
    COMMANDS[argv[0]][0]()
