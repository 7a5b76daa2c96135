"""Hydra's composition errors as one line, with the closest valid key or option.

Hydra prints a misspelt key (``Key 'batch_sze' is not in struct``), an unknown option of a config group or an
override it cannot parse over several lines, then exits with status 1. :func:`explain_composition_error` turns
each into one line that names the override and what to write instead ("did you mean data.batch_size?");
:func:`one_line_errors` makes a Hydra app print it (and :class:`~seglab.runtime.errors.UserError` raised before the task
runs, e.g. by a Hydra callback) as ``error: ...`` with exit status 2, the status of seglab's own user errors.
With ``HYDRA_FULL_ERROR=1`` the traceback is printed too.
"""

from __future__ import annotations

import difflib
import inspect
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import hydra._internal.utils as hydra_utils
from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException, SearchPathException
from hydra.utils import get_object
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from seglab.config.compose import CONFIG_DIR
from seglab.runtime.errors import UserError, exit_with_message
from seglab.runtime.extras import install_command, plugin_extra
from seglab.tracking.redaction import redact_command_line

GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"
EXPLAINED = (ConfigCompositionException, OverrideParseException, SearchPathException, UserError)


def explain_composition_error(err: Exception) -> str:
    """One line for a Hydra composition error (or the message of a :class:`UserError`)."""
    if isinstance(err, MissingConfigException) and err.missing_cfg_file:
        return _unknown_option(err.missing_cfg_file, list(err.options or []))
    cause = err.__cause__
    misspelt = isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None)
    if misspelt and str(err).startswith("Could not override"):
        return _unknown_key(str(cause.full_key), cause.parent_node, str(err))
    if isinstance(err, OverrideParseException):
        reason = [line for line in str(err).splitlines() if line and not line.startswith(("See ", "Error parsing"))]
        return f"cannot parse the override {err.override}: {' '.join(reason)}; write key=value (see {GRAMMAR})"
    return " ".join(line.strip() for line in str(err).splitlines() if line.strip())


def _unknown_option(missing: str, options: list[str]) -> str:
    group, _, option = missing.rpartition("/")
    extra = plugin_extra(missing)
    if extra:  # an option that a Hydra plugin adds, and the plugin is not installed
        return f"{group}={option} comes with a Hydra plugin that is not installed: {install_command(extra)}"
    if not options:  # not a config group at all
        guess = _closest(group, config_groups())
        return f"{group} is not a config group" + (f"; did you mean {guess}={option}?" if guess else "")
    guess = _closest(option, options)
    hint = f"did you mean {group}={guess}? " if guess else ""
    return f"{group}={option} is not an option of {group}; {hint}Options: {', '.join(options)}"


def _unknown_key(key: str, parent: Any, message: str) -> str:
    """``key`` is not in the config: an argument of the node's ``_target_`` it does not list yet, else a key of
    the same node or any key or config group by its spelling."""
    prefix, _, name = key.rpartition(".")
    added = re.search(r"use (\+\S+)", message)
    append = redact_command_line([added.group(1) if added else f"+{key}=..."])[0]
    target = parent.get("_target_") if isinstance(parent, DictConfig) else None
    if target and name in _arguments(target):
        return f"{key} is an argument of {target} that the config does not list; add it with {append}"
    siblings = [str(k) for k in parent.keys()] if isinstance(parent, DictConfig) else []
    guess = _closest(name, siblings)
    if guess:
        guess = f"{prefix}.{guess}" if prefix else guess
    else:
        root = parent._get_root() if isinstance(parent, DictConfig) else None
        guess = _closest(key, [*_dotted_keys(root, skip_hydra=not key.startswith("hydra.")), *config_groups()])
    hint = f"; did you mean {guess}?" if guess else ""
    return f"{key} is not in the config{hint} (a key the config does not have is added with {append})"


def _arguments(target: str) -> list[str]:
    """The parameter names of the class or function a ``_target_`` names (none if it cannot be imported)."""
    try:
        return list(inspect.signature(get_object(target)).parameters)
    except Exception:  # the target's own error is reported when it is instantiated
        return []


def _closest(word: str, candidates: list[str]) -> str | None:
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.75)
    return found[0] if found else None


def _dotted_keys(node: Any, skip_hydra: bool, prefix: str = "") -> Iterator[str]:
    if not isinstance(node, DictConfig):
        return
    for name in node.keys():
        if skip_hydra and not prefix and name == "hydra":
            continue
        key = f"{prefix}{name}"
        yield key
        yield from _dotted_keys(node._get_node(name), skip_hydra, f"{key}.")


def config_groups() -> list[str]:
    """Every config group of seglab's configs: ``data``, ``model``, ``model/backbone``, ..."""
    root = Path(CONFIG_DIR)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_dir() and any(p.glob("*.yaml")))


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Inside, a Hydra app prints its composition errors (and user errors raised outside the task) as one line
    and exits with status 2.

    Hydra runs each stage of an app (composing the config, running the task) through
    ``hydra._internal.utils.run_and_report``, which prints what goes wrong and exits with status 1; it is wrapped
    here for the time of the app, so the errors above are explained first.
    """
    original = hydra_utils.run_and_report

    def run_and_report(func: Callable[[], Any]) -> Any:
        def explained() -> Any:
            try:
                return func()
            except EXPLAINED as err:
                exit_with_message(explain_composition_error(err), err)

        return original(explained)

    hydra_utils.run_and_report = run_and_report
    try:
        yield
    finally:
        hydra_utils.run_and_report = original
