"""The seglab commands shown in the docs, and whether each still composes with the current configs.

A command is any ``python train.py`` / ``eval.py`` / ``predict.py``, ``python -m seglab <command>`` or
``seglab-<command>`` (also after ``torchrun ...`` or ``srun``) in a shell code block (fenced as ``bash``, ``sh``,
``shell`` or unnamed; one per line, ``\\`` continues a line) or an inline code span. Its overrides are composed in-process with the command's primary config
(``conf/<train|eval|predict|export|report>.yaml``), Hydra's own settings included, as the command would compose them.
What a doc writes that is not a literal override follows these rules:

- ``<...>`` (``<ckpt>``, ``<run dir>``), ``$VARIABLE`` and a value ``...`` are placeholders: a value holding one is
  replaced by a dummy of the key's type in the config composed without it (``1``, ``1.0``, ``true``, else the
  string ``placeholder``); an argument whose key holds one (``<name>=<value>``) and the argument ``...`` stand for
  any override and are skipped.
- ``a|b|c`` in a value lists the choices of a synopsis: the first is composed. ``[key=value]`` is an optional
  argument: composed.
- Flags (``-m``, ``--help``, ``--cfg job``) are not overrides. With ``-m`` / ``--multirun`` a sweep (``a,b``,
  ``range(...)``) is composed with its first value; without, a sweep is an error, as it is for the command.
- eval / predict / export hand a training-config key to Hydra with ``++`` and apply it to the checkpoint's config
  (:mod:`seglab.commands.entry`): composed the same way; then those keys, with the command line's
  config-group choices, must also compose with ``train.yaml`` under one of the model presets (the checkpoint's
  preset is not in the doc).
- ``python -m seglab.<module>`` (the module paths before ``python -m seglab <command>``) is reported as outdated.
"""

from __future__ import annotations

import functools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from seglab.commands.entry import defer_to_checkpoint
from seglab.config.compose import CONFIG_DIR, compose_config

# How a command is named -> its primary config.
SCRIPTS = {"train.py": "train", "eval.py": "eval", "predict.py": "predict"}
SUBCOMMANDS = {"train": "train", "eval": "eval", "evaluate": "eval", "predict": "predict", "export": "export", "report": "report"}
CHECKPOINT_COMMANDS = ("eval", "predict", "export")
PLACEHOLDER = "placeholder"
_SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
_SEPARATORS = {"&&", "||", ";", "|"}
_MISSING = object()
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-name", "-cn", "--config-dir", "-cd"}


@dataclass(frozen=True)
class DocCommand:
    """One command as a doc shows it: where, the text, the primary config and its arguments."""

    where: str  # file:line
    text: str
    config: str  # train, eval, predict, export, report; "" for an outdated form
    arguments: tuple[str, ...]
    multirun: bool


def _placeholders(text: str) -> str:
    """``<...>`` and ``$VAR`` as one shell word each (``<run dir>`` holds a space)."""
    text = re.sub(r"<[^<>`]*>", PLACEHOLDER, text)
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", PLACEHOLDER, text)


def _code_spans(markdown: str) -> list[tuple[int, str]]:
    """(line number, text) of every fenced-block line (continuations joined) and every inline code span."""
    spans, prose, fence, shell = [], [], None, False
    lines = markdown.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else number
            shell = line.strip()[3:] in _SHELL_FENCES
            prose.append("")
            continue
        if fence is None or not shell:
            prose.append("" if fence is not None else line)
            continue
        start = number
        while line.rstrip().endswith("\\") and number < len(lines):
            line = line.rstrip()[:-1] + " " + lines[number]
            number += 1
            prose.append("")
        spans.append((start, line))
        prose.append("")
    text = "\n".join(prose)
    for match in re.finditer(r"`([^`]+)`", text):
        spans.append((text.count("\n", 0, match.start()) + 1, " ".join(match.group(1).split())))
    return spans


def _commands_in(words: list[str]) -> list[tuple[str, list[str]]]:
    """(primary config, arguments) of each seglab command in a shell command line's words."""
    found, part = [], []
    for word in [*words, "&&"]:
        if word not in _SEPARATORS:
            part.append(word)
            continue
        for i, word_i in enumerate(part):
            if word_i in SCRIPTS:
                found.append((SCRIPTS[word_i], part[i + 1:]))
            elif re.fullmatch(r"seglab-\w+", word_i) and word_i[7:] in SUBCOMMANDS:
                found.append((SUBCOMMANDS[word_i[7:]], part[i + 1:]))
            elif word_i == "-m" and i > 0 and part[i - 1] == "python" and i + 1 < len(part):
                module = part[i + 1]
                if module == "seglab" and i + 2 < len(part) and part[i + 2] in SUBCOMMANDS:
                    found.append((SUBCOMMANDS[part[i + 2]], part[i + 3:]))
                elif module.startswith("seglab."):
                    found.append(("", [module]))
            else:
                continue
            break
        part = []
    return found


def doc_commands(path: Path, root: Path) -> list[DocCommand]:
    """Every seglab command shown in the markdown file ``path`` (named relative to ``root``)."""
    commands = []
    for line, span in _code_spans(path.read_text()):
        if not re.search(r"\b(train|eval|predict)\.py\b|\bseglab[- ]|-m seglab", span):
            continue
        try:
            words = shlex.split(_placeholders(span), comments=True)
        except ValueError:  # an unbalanced quote: not a command line
            continue
        for config, arguments in _commands_in(words):
            multirun = any(a in ("-m", "--multirun") for a in arguments)
            where = f"{path.relative_to(root)}:{line}"
            commands.append(DocCommand(where, span, config, tuple(arguments), multirun))
    return commands


def _overrides(command: DocCommand) -> list[str]:
    """The command's arguments as Hydra overrides, by the rules of the module docstring."""
    parser, overrides, skip = OverridesParser.create(), [], False
    for argument in command.arguments:
        if skip or argument == "...":
            skip = False
            continue
        if argument.startswith("-"):
            skip = argument in _FLAGS_WITH_VALUE
            continue
        if argument.startswith("[") and argument.endswith("]"):
            argument = argument[1:-1]
        key, _, value = argument.partition("=")
        if PLACEHOLDER in key:
            continue
        if PLACEHOLDER in value or value == "...":
            value = PLACEHOLDER
        elif "|" in value and not value.startswith(("[", "{", "'", '"')):
            value = value.split("|")[0]
        argument = f"{key}={value}" if "=" in argument else argument
        if command.multirun and "=" in argument:
            override = parser.parse_override(argument)
            if override.is_sweep_override():
                argument = f"{override.get_key_element()}={next(iter(override.sweep_string_iterator()))}"
        overrides.append(argument)
    return overrides


def _typed_dummies(config: str, overrides: list[str]) -> list[str]:
    """Each ``key=placeholder`` as ``key=<dummy of the type the key has without the placeholders>``."""
    holes = [i for i, o in enumerate(overrides) if o.endswith(f"={PLACEHOLDER}")]
    base = compose_config(config, [o for i, o in enumerate(overrides) if i not in holes], return_hydra_config=True)
    typed = list(overrides)
    for i in holes:
        key = overrides[i].partition("=")[0].lstrip("+~")
        current = OmegaConf.select(base, key, default=None, throw_on_resolution_failure=False)
        dummy = {bool: "true", int: "1", float: "1.0"}.get(type(current), PLACEHOLDER)
        typed[i] = f"{overrides[i].rpartition('=')[0]}={dummy}"
    return typed


@functools.cache
def _preset_models() -> dict[str, DictConfig]:
    """The ``model`` node of each model preset's training config (composed once)."""
    presets = sorted(path.stem for path in (Path(CONFIG_DIR) / "model").glob("*.yaml"))
    return {preset: compose_config("train", [f"model={preset}"]).model for preset in presets}


@functools.cache
def _command_keys(config: str) -> tuple[str, ...]:
    """The top-level keys of a checkpoint command's config that the training config lacks."""
    return tuple(sorted(set(compose_config(config)) - set(compose_config("train"))))


def _compose(config: str, overrides: list[str]) -> None:
    """Compose as the command does; placeholders as strings first, as dummies of their key's type if refused."""
    try:
        compose_config(config, overrides, return_hydra_config=True)
    except Exception:
        if not any(o.endswith(f"={PLACEHOLDER}") for o in overrides):
            raise
        compose_config(config, _typed_dummies(config, overrides), return_hydra_config=True)


def composition_error(command: DocCommand) -> str | None:
    """Why ``command`` no longer composes with the current configs (its first line), or ``None``."""
    if not command.config:
        return f"{command.arguments[0]} is an outdated module path: write python -m seglab <command> or seglab-<command>"
    try:
        overrides = _overrides(command)
        if command.config not in CHECKPOINT_COMMANDS:
            _compose(command.config, overrides)
            return None
        command_keys = _command_keys(command.config)
        handed = defer_to_checkpoint(overrides, command_keys)
        _compose(command.config, handed)
    except Exception as error:  # noqa: BLE001 (Hydra's and OmegaConf's errors: the message is the report)
        return str(error).strip().splitlines()[0]
    if handed == overrides:
        return None
    # The checkpoint's config: its training overrides (unknown here), then the command line's groups and keys.
    training = [o for o, h in zip(overrides, handed) if h != o or not o.split("=")[0].lstrip("+~").startswith((*command_keys, "hydra"))]
    return _training_keys_error(training)


def _training_keys_error(training: list[str]) -> str | None:
    """Training-config overrides of a checkpoint command must apply to the training config, under the default
    preset or, for ``model.*`` keys the default lacks, under a preset that has them."""
    try:
        compose_config("train", training)
        return None
    except Exception as error:  # noqa: BLE001
        first = str(error).strip().splitlines()[0]
    keys = [o.partition("=")[0].lstrip("+~") for o in training]
    model_keys = [key.removeprefix("model.") for key in keys if key.startswith("model.")]
    for preset, model in _preset_models().items():
        if model_keys and all(OmegaConf.select(model, key, default=_MISSING) is not _MISSING for key in model_keys):
            try:
                compose_config("train", [f"model={preset}", *training])
                return None
            except Exception:  # noqa: BLE001, S112 (the next preset may fit)
                continue
    return f"{' '.join(training)} fits no model preset's training config: {first}"


def composition_errors(commands: list[DocCommand]) -> list[str]:
    """``where: command -> error`` for every command that does not compose (each distinct command once)."""
    errors, seen = [], {}
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name="docs"):  # one for all
        for command in commands:
            key = (command.config, command.arguments)
            if key not in seen:
                seen[key] = composition_error(command)
            if seen[key] is not None:
                errors.append(f"{command.where}: {command.text} -> {seen[key]}")
    return errors
