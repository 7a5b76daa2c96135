"""Running a command as a user types it: in a subprocess, or inside the test process where the imports are paid.

A subprocess costs about 9 s of imports on 2 cores; ``run_in_process`` runs the same script through Hydra (its
composition, callbacks, run directory and logging) for the cost of the command itself. Keep one subprocess test per
family of behaviour (a one-line error, a traceback-free exit, a signal) and check the rest of the family in-process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import runpy
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Iterator

from hydra.core.global_hydra import GlobalHydra

from tests.helpers.settings import REPO


def run_script(script: str, *args: str, cwd: Path = REPO, env: dict | None = None, timeout: int = 300):
    """Run ``python <script> <args>`` from the repository like a user would; returns the CompletedProcess."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_in_process(script: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run ``python <script> <args>`` inside this process: its exit status, stdout and stderr as from
    :func:`run_script` (``script`` is a file of the repository, or ``-m`` and a module name as the first arg).

    An exception the command lets through is raised here (a subprocess would print its traceback and exit 1).
    What the run does to logging (Hydra's console and ``.log`` handlers, disabled loggers) is undone afterwards.
    """
    module = args[0] if script == "-m" else None
    argv = [module or str(REPO / script), *(args[1:] if module else args)]
    saved_argv = sys.argv
    out, err = io.StringIO(), io.StringIO()
    returncode = 0
    GlobalHydra.instance().clear()
    try:
        sys.argv = argv
        with logging_restored(), contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if module:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exit_:
        returncode = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        sys.argv = saved_argv
        GlobalHydra.instance().clear()
    return subprocess.CompletedProcess(argv, returncode, out.getvalue(), err.getvalue())


def _loggers() -> list[logging.Logger]:
    return [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger))]


@contextlib.contextmanager
def logging_restored() -> Iterator[None]:
    """Undo what a Hydra run does to logging (its handlers, levels, propagation, and the loggers that a
    ``disable_existing_loggers: true`` job-logging config disables), so later tests' ``caplog`` still sees records."""
    saved = {lg.name: (list(lg.handlers), lg.level, lg.propagate, lg.disabled) for lg in _loggers()}
    try:
        yield
    finally:
        kept = {id(handler) for handlers, *_ in saved.values() for handler in handlers}
        for logger in _loggers():
            for handler in logger.handlers:
                if id(handler) not in kept:
                    handler.close()
            logger.handlers, level, logger.propagate, logger.disabled = saved.get(logger.name, ([], logging.NOTSET, True, False))
            logger.setLevel(level)
