"""The classes of a COCO-format dataset, read from the ``categories`` of its annotation files.

A COCO instances json lists its categories (``{"id": 3, "name": "car", "supercategory": "vehicle"}``); seglab's
classes are ``background`` (0) then the categories in id order (1..N), whatever the ids (COCO 2017's 1..90 with
gaps become 1..80; a custom file's ids 3, 7, 12 become 1, 2, 3). A name several categories share is made unique
with its supercategory: ``"name (supercategory)"``. ``conf/data/coco.yaml`` takes ``data.class_names`` from the
splits' files through the ``${seglab.coco_classes:...}`` resolver; every split must list the same classes.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from seglab.data.datasets.base import require_root
from seglab.runtime.errors import UserError

BACKGROUND = "background"
LAYOUT = (
    "expected <root>/annotations/instances_<split>.json and the images in <root>/<split>/ "
    "(splits train2017, val2017)"
)
EXAMPLE = '"categories": [{"id": 1, "name": "person", "supercategory": "person"}, ...]'
# COCO 2017's 80 categories in id order: the classes of data=coco before data.root is set.
COCO_2017_CLASS_NAMES = (
    BACKGROUND, "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip
# COCO's own files end with their categories: reading the file's end first spares parsing the 450 MB train json
# twice (the dataset parses it in full).
TAIL_BYTES = 1 << 20


def annotation_file(root: Path, split: str) -> Path:
    return root / "annotations" / f"instances_{split}.json"


def checked_categories(categories: Any, path: Path) -> list[dict[str, Any]]:
    """A json's ``categories`` sorted by id; a missing or empty list, an entry without an integer ``id`` and a
    string ``name``, or an id listed twice is a :class:`UserError`."""
    if not isinstance(categories, list) or not categories:
        raise UserError(f"{path} lists no categories; a COCO instances file names its classes as {EXAMPLE}")
    for category in categories:
        valid = isinstance(category, dict) and type(category.get("id")) is int and isinstance(category.get("name"), str)
        if not valid or not category["name"]:
            raise UserError(f"{path}: the category {category!r} needs an integer 'id' and a 'name' ({EXAMPLE})")
    repeated = sorted(cid for cid, count in Counter(c["id"] for c in categories).items() if count > 1)
    if repeated:
        raise UserError(f"{path} lists category id {repeated[0]} more than once; give each category its own id")
    return sorted(categories, key=lambda category: category["id"])


def class_names_of(categories: Sequence[dict[str, Any]], path: Path) -> tuple[str, ...]:
    """``background`` then the (checked, sorted) categories' names; shared names get their supercategory."""
    names = [category["name"] for category in categories]
    shared = {name for name, count in Counter([BACKGROUND, *names]).items() if count > 1}
    unique = [f"{c['name']} ({c.get('supercategory')})" if c["name"] in shared else c["name"] for c in categories]
    for name, count in Counter(unique).items():
        if count > 1:
            ids = [c["id"] for c, u in zip(categories, unique) if u == name]
            raise UserError(
                f"{path}: categories {ids} have the same name and supercategory ({name}); give each its own name"
            )
    return (BACKGROUND, *unique)


def read_categories(path: Path) -> Any:
    """The ``categories`` value of a json file (``None`` without one), from its last megabyte when the file ends
    with it, else from the whole file; a file that is not JSON is a :class:`UserError`."""
    with path.open("rb") as file:
        file.seek(max(file.seek(0, os.SEEK_END) - TAIL_BYTES, 0))
        tail = file.read().decode("utf-8", errors="replace")
    key = tail.rfind('"categories"')
    if key >= 0 and tail[:key].rstrip().endswith((",", "{")):  # a key, not the end of a string
        rest = tail[key + len('"categories"') :].lstrip()
        if rest.startswith(":"):
            start = len(rest) - len(rest[1:].lstrip())
            try:
                value, end = json.JSONDecoder().raw_decode(rest, start)
            except json.JSONDecodeError:
                value, end = None, 0
            if end and rest[end:].strip() == "}":  # the last key of the top-level object
                return value
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not a COCO instances file: {type(err).__name__}: {err}") from None
    return content.get("categories") if isinstance(content, dict) else None


def file_class_names(path: Path) -> tuple[str, ...]:
    return class_names_of(checked_categories(read_categories(path), path), path)


def split_class_names(root: str | None, *splits: str | None) -> list[str]:
    """The class names of the COCO-format dataset at ``root`` (``${seglab.coco_classes:...}`` in the config):
    those of the annotation files of ``splits`` (``a+b`` names two) that exist, which must agree. COCO 2017's
    classes while ``root`` is not set (the dataset then asks for it)."""
    if root is None or str(root) == "":
        return list(COCO_2017_CLASS_NAMES)
    folder = require_root(root, "COCO", LAYOUT)
    files = [annotation_file(folder, part) for split in splits if split for part in str(split).split("+")]
    found = [(path, file_class_names(path)) for path in files if path.is_file()]
    if not found:
        raise UserError(f"annotation file {files[0]} is missing; {LAYOUT}")
    (first, names), *others = found
    for other, other_names in others:
        if other_names != names:
            raise UserError(
                f"{first} and {other} list different categories ({describe_difference(names, other_names)}); the "
                "splits of a dataset share one class list: give both files the same categories"
            )
    return list(names)


def describe_difference(names: Sequence[str], others: Sequence[str]) -> str:
    """How two class lists differ, in a few words."""
    only_first = [n for n in names if n not in others]
    only_second = [n for n in others if n not in names]
    if not only_first and not only_second:
        return "the same names in another id order"
    parts = [f"{len(names) - 1} vs {len(others) - 1} categories"]
    parts += [f"only in the first: {', '.join(only_first[:5])}"] if only_first else []
    parts += [f"only in the second: {', '.join(only_second[:5])}"] if only_second else []
    return "; ".join(parts)
