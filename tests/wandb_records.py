"""Reading an offline W&B run back: the records of its ``run-<id>.wandb`` file.

W&B writes a LevelDB-style log (a 7-byte file header, then 32 KiB blocks of chunks with a 7-byte header:
CRC32, little-endian length, type FULL/FIRST/MIDDLE/LAST) of ``wandb_internal_pb2.Record`` messages; wandb
ships no reader for it, so the tests use this one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Iterator

from wandb.proto import wandb_internal_pb2

BLOCK_SIZE = 32 * 1024
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    position, pending = 7, b""
    while position + CHUNK_HEADER <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < CHUNK_HEADER:  # block trailer: padding
            position += left_in_block
            continue
        length = int.from_bytes(data[position + 4 : position + 6], "little")
        kind = data[position + 6]
        chunk = data[position + CHUNK_HEADER : position + CHUNK_HEADER + length]
        position += CHUNK_HEADER + length
        if kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending + chunk if kind == LAST else chunk)
            pending = b""
            yield record


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


class OfflineRun:
    """What an offline run recorded: run attributes, config, summary, history rows and logged files."""

    def __init__(self, run_dir: Path, timeout: float = 60.0) -> None:
        (self.file,) = Path(run_dir).glob("run-*.wandb")
        # W&B's service process writes the file behind the client: wait for the run's final (exit) record.
        deadline = time.monotonic() + timeout
        while not any(r.WhichOneof("record_type") == "exit" for r in read_records(self.file)):
            assert time.monotonic() < deadline, f"{self.file} has no exit record after {timeout} s"
            time.sleep(0.2)
        self.run: Any = None
        self.config: dict[str, Any] = {}
        self.summary: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []
        self.files: list[str] = []
        self.artifacts: list[Any] = []
        for record in read_records(self.file):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                self.run = record.run
                self.config.update({_key(i): json.loads(i.value_json) for i in record.run.config.update})
            elif kind == "config":
                self.config.update({_key(i): json.loads(i.value_json) for i in record.config.update})
            elif kind == "summary":
                self.summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
            elif kind == "history":
                self.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
            elif kind == "files":
                self.files += [f.path for f in record.files.files]
            elif kind == "artifact":
                self.artifacts.append(record.artifact)
