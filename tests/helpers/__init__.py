"""Helpers shared by the tests (fixtures live in the conftest.py files, not here)."""

from tests.helpers.commands import run_in_process, run_script
from tests.helpers.config import make_cfg
from tests.helpers.errors import assert_one_line_error, raises_user_error
from tests.helpers.settings import PRESETS, QUICK, REPO, SMALL_DETECTOR, TINY, TINY_INSTANCES

__all__ = [
    "PRESETS", "QUICK", "REPO", "SMALL_DETECTOR", "TINY", "TINY_INSTANCES",
    "assert_one_line_error", "make_cfg", "raises_user_error", "run_in_process", "run_script",
]
