"""User-facing errors: one clear message, no traceback.

Raise :class:`UserError` for anything a user can fix (a path, a config value, a data file). The entry points
catch it, print the message with secrets masked (see :mod:`seglab.tracking.redaction`) and exit with status 2 (Hydra's
composition errors too, see :mod:`seglab.config.hydra_errors`); ``HYDRA_FULL_ERROR=1`` prints the traceback as well.
Programming errors keep their traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from typing import Any, Callable, Iterable, NoReturn, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError

from seglab.tracking.redaction import environment_secrets, redact_text, secrets_in

T = TypeVar("T")
log = logging.getLogger(__name__)


class UserError(Exception):
    """An error the user caused and can fix; the message names what is wrong and how to fix it."""


def user_error_cause(err: BaseException | None) -> UserError | None:
    """The :class:`UserError` that ``err`` is or was raised from, if any: ``hydra.utils.instantiate`` wraps what a
    part's constructor raises (e.g. a bad loss option) in its own ``InstantiationException`` (as its cause), and
    OmegaConf wraps what a resolver raises (e.g. ``data.class_names`` of ``data=coco``) in an
    ``InterpolationResolutionError`` raised while handling it (as its context)."""
    while err is not None and not isinstance(err, UserError):
        err = err.__cause__ or (err.__context__ if isinstance(err, InterpolationResolutionError) else None)
    return err


def exit_on_user_error(func: Callable[..., T]) -> Callable[..., T]:
    """Wrap an entry function so that a :class:`UserError` prints one line and exits non-zero; the secrets of the
    environment and of a config argument (values under secret-looking keys) are masked in it."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except Exception as err:
            user_error = user_error_cause(err)
            if user_error is None:
                raise
            secrets = environment_secrets().union(
                *(secrets_in(OmegaConf.to_container(a)) for a in args if isinstance(a, DictConfig))
            )
            exit_with_message(str(user_error), err, secrets)

    return wrapper


def exit_with_message(message: str, err: BaseException, secrets: Iterable[str] | None = None) -> NoReturn:
    """Print ``error: <message>`` with ``secrets`` masked and exit with status 2; the traceback is logged (at debug
    level), and printed first with ``HYDRA_FULL_ERROR=1``."""
    details = redact_text("".join(traceback.format_exception(err)), secrets)
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        print(details, file=sys.stderr, flush=True)
    log.debug("user error:\n%s", details)
    print(f"error: {redact_text(message, secrets)}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None
