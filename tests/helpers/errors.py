"""Expecting a user error: the one-line message a command would print, also when Hydra's instantiate wrapped it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from seglab.runtime.errors import user_error_cause


@contextmanager
def raises_user_error(match: str) -> Iterator[pytest.ExceptionInfo]:
    """Expect a :class:`~seglab.runtime.errors.UserError` whose message matches ``match`` (``re.search``), raised
    directly or as the cause of another exception (as the entry points unwrap it)."""
    with pytest.raises(Exception) as info:
        yield info
    error = user_error_cause(info.value)
    assert error is not None, f"expected a UserError, got {info.value!r}"
    assert re.search(match, str(error)), f"{match!r} not found in the UserError {str(error)!r}"


def assert_one_line_error(result, *fragments: str, status: int = 2) -> str:
    """Check a finished command (:func:`~tests.helpers.commands.run_script` or ``run_in_process``) exited with
    ``status``, printed no traceback, and ended on one ``error: ...`` line naming every fragment; returns the line."""
    output = result.stdout + result.stderr
    assert result.returncode == status, (result.returncode, output[-3000:])
    assert "Traceback" not in output, output[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: "), output[-3000:]
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line
