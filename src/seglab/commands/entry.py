"""``@hydra_entry("train")``: ``@hydra.main`` for seglab's commands, with every user error as one line."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import hydra
from omegaconf import DictConfig

from seglab.config.compose import CONFIG_DIR
from seglab.config.hydra_errors import one_line_errors
from seglab.runtime.errors import exit_on_user_error

T = TypeVar("T")


def hydra_entry(config_name: str) -> Callable[[Callable[[DictConfig], T]], Callable[[], T | None]]:
    """Make ``task(cfg)`` a command composed from ``conf/<config_name>.yaml`` and the command line.

    A :class:`~seglab.runtime.errors.UserError` raised by the task and Hydra's composition errors (a misspelt key, an
    unknown option, an override it cannot parse) print one line ``error: ...`` and exit with status 2.
    """

    def decorate(task: Callable[[DictConfig], T]) -> Callable[[], T | None]:
        app = hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)(exit_on_user_error(task))

        @functools.wraps(task)
        def main(*args: Any, **kwargs: Any) -> T | None:
            with one_line_errors():
                return app(*args, **kwargs)

        return main

    return decorate
