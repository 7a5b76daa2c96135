"""What a config value may be: small rules that test a value and say in words what they allow.

A rule reads like its message: ``integer(1)`` allows "an integer >= 1", ``number(0, 1)`` "a number in [0, 1]",
``pair(integer(1), "[height, width]")`` "two integers >= 1, [height, width]". Rules combine with ``|`` (``integer(1) | exactly(-1, "no limit")``,
``optional(rule)`` adds null). Booleans are never numbers here, nor are floats integers (``data.batch_size=8.0``
is refused: torch's loaders take integers only); numbers are finite. The table that applies them to the config
keys is :mod:`seglab.config.validation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class Rule:
    """``test`` accepts the values ``alternatives`` describe (phrases that complete "must be ...")."""

    alternatives: tuple[str, ...]
    test: Callable[[Any], bool]

    @property
    def allowed(self) -> str:
        """``a``, ``a or b``, ``a, b or c``."""
        *rest, last = self.alternatives
        return f"{', '.join(rest)} or {last}" if rest else last

    def __call__(self, value: Any) -> bool:
        return self.test(value)

    def __or__(self, other: Rule) -> Rule:
        return Rule(self.alternatives + other.alternatives, lambda value: self.test(value) or other.test(value))


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bounds(minimum: float | None, maximum: float | None, above: float | None, below: float | None) -> str:
    low = f"[{show(minimum)}" if minimum is not None else f"({show(above)}" if above is not None else None
    high = f"{show(maximum)}]" if maximum is not None else f"{show(below)})" if below is not None else None
    if low and high:
        return f" in {low}, {high}"
    if low:
        return f" >= {show(minimum)}" if minimum is not None else f" > {show(above)}"
    if high:
        return f" <= {show(maximum)}" if maximum is not None else f" < {show(below)}"
    return ""


def _within(value: float, minimum: float | None, maximum: float | None, above: float | None, below: float | None) -> bool:
    return (
        (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
        and (above is None or value > above)
        and (below is None or value < below)
    )


def integer(minimum: int | None = None, maximum: int | None = None) -> Rule:
    """An integer (not a float, not a boolean) in ``minimum..maximum``."""
    allowed = f"an integer{_bounds(minimum, maximum, None, None)}"
    return Rule((allowed,), lambda v: _is_integer(v) and _within(v, minimum, maximum, None, None))


def number(
    minimum: float | None = None, maximum: float | None = None, *, above: float | None = None, below: float | None = None
) -> Rule:
    """A finite number (an integer or a float, not a boolean) within the bounds (``above``/``below``: excluded)."""
    allowed = f"a number{_bounds(minimum, maximum, above, below)}"
    return Rule((allowed,), lambda v: _is_number(v) and _within(v, minimum, maximum, above, below))


def exactly(value: Any, meaning: str) -> Rule:
    """One special value, e.g. ``exactly(-1, "no limit")``."""
    return Rule((f"{show(value)} ({meaning})",), lambda v: type(v) is type(value) and v == value)


def one_of(*choices: Any) -> Rule:
    """One of ``choices``, compared as text (``trainer.precision=16`` is the choice ``"16"``)."""
    names = [str(choice) for choice in choices]
    allowed = f"one of {', '.join(names)}" if len(names) > 1 else names[0]
    return Rule((allowed,), lambda v: not isinstance(v, (bool, list, dict)) and str(v) in names)


def pair(item: Rule, what: str) -> Rule:
    """Two values that each pass ``item``, e.g. ``pair(integer(1), "[height, width]")``."""
    return Rule((f"two {_plural(item)}, {what}",), lambda v: _is_list(v) and len(v) == 2 and all(map(item.test, v)))


def sequence(item: Rule) -> Rule:
    """A non-empty list whose items each pass ``item``."""
    allowed = f"a non-empty list of {_plural(item)}"
    return Rule((allowed,), lambda v: _is_list(v) and len(v) > 0 and all(map(item.test, v)))


def optional(rule: Rule) -> Rule:
    """``rule`` or null."""
    return rule | Rule(("null",), lambda v: v is None)


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _plural(item: Rule) -> str:
    return item.allowed.replace("an integer", "integers").replace("a number", "numbers")


FLAG = Rule(("true", "false"), lambda v: isinstance(v, bool))
# A file or folder name: text (Hydra reads a bare 2024 as a number, which is a folder name too).
PATH = Rule(("a path",), lambda v: (isinstance(v, str) and v.strip() != "") or _is_integer(v))
# A config node of its own (e.g. a _target_ to instantiate).
MAPPING = Rule(("a config node",), lambda v: isinstance(v, Mapping))


def show(value: Any) -> str:
    """A value as it is written on the command line: ``null``, ``true``, ``[7, 8]``, ``abc``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{key}: {show(item)}" for key, item in value.items()) + "}"
    if _is_list(value):
        return "[" + ", ".join(show(item) for item in value) + "]"
    return repr(value) if isinstance(value, float) else str(value)

