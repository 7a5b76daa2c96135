"""Reading an offline W&B run back: the records of its ``run-<id>.wandb`` file (read with seglab's reader,
:mod:`seglab.tracking.wandb_history`, which resumed runs use to find what a run holds already)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from seglab.tracking.wandb_history import item_key, read_records


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
                self.config.update({item_key(i): json.loads(i.value_json) for i in record.run.config.update})
            elif kind == "config":
                self.config.update({item_key(i): json.loads(i.value_json) for i in record.config.update})
            elif kind == "summary":
                self.summary.update({item_key(i): json.loads(i.value_json) for i in record.summary.update})
            elif kind == "history":
                self.history.append({item_key(i): json.loads(i.value_json) for i in record.history.item})
            elif kind == "files":
                self.files += [f.path for f in record.files.files]
            elif kind == "artifact":
                self.artifacts.append(record.artifact)
