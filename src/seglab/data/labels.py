"""Raw label values -> class ids, refusing values that are neither a class nor the ignore index.

``data.strict_labels`` decides what happens to such values: ``true`` (the default) raises a :class:`UserError`
naming the file and the values; ``false`` maps them to the ignore index and warns once per dataset (once per
loader worker process).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from seglab.runtime.errors import UserError

IGNORE_INDEX = 255


def check_ignore_index(key: str, ignore_index: int, class_names: Sequence[str]) -> None:
    """Refuse an ignore index that is also a class id (that class would count in neither loss nor metrics)."""
    if 0 <= ignore_index < len(class_names):
        raise UserError(
            f"{key}={ignore_index} collides with class {ignore_index} ({class_names[ignore_index]!r}); use a value "
            f"outside 0..{len(class_names) - 1} such as 255"
        )


class LabelMapper:
    """Maps raw label values through a lookup table.

    Args:
        mapping: raw value -> class id (or ``ignore_index``) for every raw value the format allows.
        strict: refuse unknown raw values (``True``) or map them to ``ignore_index`` with one warning.
        expected: what the format allows, for messages (e.g. ``"0..150 (ADE20K: 0 = other)"``).
        ignore_index: the class id of ignored pixels.
    """

    def __init__(self, mapping: Mapping[int, int], strict: bool, expected: str, ignore_index: int = IGNORE_INDEX):
        self.lut = np.full(257, ignore_index, dtype=np.uint8)  # entry 256 catches values outside 0..255
        self.known = np.zeros(257, dtype=bool)
        for raw, class_id in mapping.items():
            self.lut[raw] = class_id
            self.known[raw] = True
        self.strict = strict
        self.expected = expected
        self.ignore_index = ignore_index
        self.warned = False

    @classmethod
    def identity(cls, num_classes: int, strict: bool, ignore_index: int = IGNORE_INDEX) -> LabelMapper:
        """Raw values are class ids already: ``0..num_classes-1`` and ``ignore_index`` are valid."""
        mapping = {value: value for value in range(num_classes)}
        mapping[ignore_index] = ignore_index
        return cls(mapping, strict, f"0..{num_classes - 1} or {ignore_index} (ignore)", ignore_index)

    def __call__(self, raw: np.ndarray, path: str | Path) -> np.ndarray:
        """Class ids (HxW uint8) of the raw label map read from ``path``."""
        if raw.dtype == np.uint8:
            present = np.flatnonzero(np.bincount(raw.ravel(), minlength=256))
        else:
            present = np.unique(raw)
            raw = np.where((raw >= 0) & (raw < 256), raw, 256)
        unknown = [int(v) for v in present if not (0 <= v < 256 and self.known[v])]
        if unknown:
            self.refuse(unknown, path)
        return self.lut[raw]

    def refuse(self, values: Iterable[object], path: str | Path) -> None:
        """Raise for unknown ``values`` found in ``path`` (strict), or warn once that they become ignore."""
        shown = ", ".join(str(v) for v in list(values)[:20])
        problem = (
            f"{path} has label values [{shown}] that are neither a class nor the ignore index "
            f"(expected {self.expected})"
        )
        if self.strict:
            raise UserError(
                f"{problem}; fix the file, or set data.strict_labels=false to map them to {self.ignore_index}"
            )
        if not self.warned:
            self.warned = True
            warnings.warn(
                f"{problem}; data.strict_labels=false maps them to {self.ignore_index} (warned once)",
                UserWarning,
                stacklevel=2,
            )
