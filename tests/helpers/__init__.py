"""Helpers shared by the tests (fixtures live in the conftest.py files, not here)."""

from tests.helpers.commands import run_in_process, run_script
from tests.helpers.config import make_cfg
from tests.helpers.errors import assert_one_line_error, raises_user_error
from tests.helpers.metrics import RECORD_VALIDATION, assert_miou_is_recomputed
from tests.helpers.settings import PRESETS, QUICK, REPO, SMALL_DETECTOR, TINY, TINY_INSTANCES

__all__ = [
    "PRESETS", "QUICK", "RECORD_VALIDATION", "REPO", "SMALL_DETECTOR", "TINY", "TINY_INSTANCES",
    "assert_miou_is_recomputed", "assert_one_line_error", "make_cfg", "raises_user_error", "run_in_process", "run_script",
]
