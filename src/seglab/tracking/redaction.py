"""Keeping secrets out of everything a run writes or logs: configs, command lines, dashboards, run-dir files.

A value is secret when its key looks like one (``api_key``, ``token``, ``secret``, ``password``,
``credentials``), when it is the value of an environment variable whose name looks like one
(``WANDB_API_KEY``, ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ... wherever it ends up, e.g. through
``${oc.env:...}``), or when it is the password part of a URL (``https://user:password@host``).
:func:`redact` is the one function every writer and logger goes through.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

MASK = "***"
# A key component (between _ . - / or the ends) that names a secret; "tokenizer" and "max_tokens" do not match.
SECRET_NAME = re.compile(r"(?:^|[_.\-/])(api_?key|token|secret|password|passwd|credentials?)(?:$|[_.\-/])", re.I)
URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.\-]*://[^/\s:@]+:)([^/\s@]+)(@)", re.I)
# Environment values shorter than this are too likely to occur by chance ("1", "true") to be masked everywhere.
MIN_SECRET_LENGTH = 6


def is_secret_name(name: str) -> bool:
    """True for keys and environment variable names that name a secret (``WANDB_API_KEY``, ``db.password``)."""
    return bool(SECRET_NAME.search(str(name)))


def environment_secrets(environ: Mapping[str, str] | None = None) -> set[str]:
    """Values of environment variables whose names look secret."""
    environ = os.environ if environ is None else environ
    return {value for name, value in environ.items() if is_secret_name(name) and len(value) >= MIN_SECRET_LENGTH}


def redact_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every known secret (environment secrets by default) and URL password replaced by ``***``."""
    secrets = environment_secrets() if secrets is None else secrets
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return URL_PASSWORD.sub(rf"\1{MASK}\3", text)


def redact(value: Any, secrets: Iterable[str] | None = None) -> Any:
    """A copy of a plain container (dicts, lists, scalars) with no secret left in it.

    Values under secret-looking keys become ``***``; strings elsewhere are cleaned with :func:`redact_text`.
    """
    secrets = environment_secrets() if secrets is None else set(secrets)
    if isinstance(value, Mapping):
        return {
            key: (MASK if is_secret_name(key) and item not in (None, "") else redact(item, secrets))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact(item, secrets) for item in value)
    if isinstance(value, str):
        return redact_text(value, secrets)
    return value


def secrets_in(value: Any) -> set[str]:
    """The values under secret-looking keys of a container, plus the environment's secrets."""
    found = environment_secrets()

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for key, item in node.items():
                if is_secret_name(key) and isinstance(item, (str, int, float)) and len(str(item)) >= MIN_SECRET_LENGTH:
                    found.add(str(item))
                walk(item)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)

    walk(value)
    return found


def redact_command_line(argv: Iterable[str], secrets: Iterable[str] | None = None) -> list[str]:
    """Command-line arguments with the values of secret-looking ``key=value`` overrides masked."""
    cleaned = []
    for arg in argv:
        key, sep, _ = arg.partition("=")
        cleaned.append(f"{key}={MASK}" if sep and is_secret_name(key.lstrip("+~")) else redact_text(arg, secrets))
    return cleaned


def redact_files(paths: Iterable[Path], secrets: Iterable[str]) -> None:
    """Rewrite text files that hold any of ``secrets`` (or a URL password) with them masked."""
    for path in paths:
        text = path.read_text()
        cleaned = redact_text(text, secrets)
        if cleaned != text:
            path.write_text(cleaned)
