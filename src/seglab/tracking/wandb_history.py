"""What a W&B run already holds: the history rows of its local ``run-<id>.wandb`` files.

W&B keeps every run's records, online or offline, in ``<save dir>/wandb/[offline-]run-<time>-<id>/run-<id>.wandb``
(what ``wandb sync`` uploads): a LevelDB-style log (a 7-byte file header, then 32 KiB blocks of chunks with a
7-byte header: CRC32, little-endian length, type FULL/FIRST/MIDDLE/LAST) of ``wandb_internal_pb2.Record``
messages. wandb ships no reader for it. A file cut short by a kill ends where its last whole record ends.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Iterator

BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
STEP_KEY = "trainer/global_step"


def read_records(path: Path) -> Iterator[Any]:
    """The ``Record`` messages of a ``.wandb`` file, up to the last whole one."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B run file")
    position, pending = 7, b""
    while position + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < CHUNK_HEADER:  # block trailer: padding
            position += left_in_block
            continue
        length, kind = int.from_bytes(data[position + 4 : position + 6], "little"), data[position + 6]
        chunk = data[position + CHUNK_HEADER : position + CHUNK_HEADER + length]
        position += CHUNK_HEADER + length
        if len(chunk) < length or kind == 0:  # cut short, or the zeros of an unwritten block
            return
        if kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            try:
                record.ParseFromString(pending + chunk if kind == LAST else chunk)
            except DecodeError:
                return
            pending = b""
            yield record


def item_key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def history_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The history rows (``run.log`` calls) of a ``.wandb`` file, as {key: value}."""
    for record in read_records(path):
        if record.WhichOneof("record_type") == "history":
            yield {item_key(item): json.loads(item.value_json) for item in record.history.item}


def recorded_values(files: Iterable[Path], since: int) -> Counter[tuple[str, int]]:
    """How many values of each (metric, ``trainer/global_step``) from ``since`` on ``files`` hold (a step can have
    several rows: the training metrics, the validation metrics and the epoch metrics of its end of epoch)."""
    recorded: Counter[tuple[str, int]] = Counter()
    for path in files:
        for row in history_rows(path):
            step = row.get(STEP_KEY)
            if isinstance(step, (int, float)) and step >= since:
                recorded.update((key, int(step)) for key in row.keys() - {STEP_KEY, "_step", "_timestamp", "_runtime"})
    return recorded
