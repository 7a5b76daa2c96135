"""CSV metrics that survive a kill and that a resumed run continues: ``<run dir>/csv/metrics.csv``.

Lightning's CSVLogger keeps rows in memory between flushes (a killed run loses them), deletes the file of the run
it continues, and dies on a file whose last row a kill cut short (``dict contains fields not in fieldnames: None``).
Here every row is written when it is logged; a run resumed into the same directory keeps the previous rows, drops
an unfinished last line (with a warning), and :meth:`CSVLogger.resume_at` drops the rows of the steps it trains
again, so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)


def read_metrics(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a metrics file; a last line without its newline (a write cut short by a kill) and
    rows of another length than the header are dropped, with a warning."""
    with open(path, newline="") as file:
        text = file.read()
    complete, _, cut = text.rpartition("\n")
    lines = list(csv.reader(io.StringIO(complete + "\n" if complete else "")))
    header, rows = (lines[0], lines[1:]) if lines else ([], [])
    kept = [row for row in rows if len(row) == len(header)]
    dropped = len(rows) - len(kept) + bool(cut)
    if dropped:
        log.warning("%s: dropped %d unfinished row(s) (the previous run was killed while writing them)", path, dropped)
    return header, [dict(zip(header, row)) for row in kept]


def write_metrics(path: Path, header: list[str], rows: list[dict[str, Any]]) -> None:
    """Replace the file in one rename, so that a kill leaves either the old rows or the new ones."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with open(temporary, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


class _ContinuedWriter(ExperimentWriter):
    """Lightning's writer, which continues an existing metrics file instead of deleting it."""

    def _check_log_dir_exists(self) -> None:  # Lightning's hook deletes the file; here it is read back
        path = Path(self.metrics_file_path)
        if not path.is_file():
            return
        self.metrics_keys, rows = read_metrics(path)
        write_metrics(path, self.metrics_keys, rows)  # without the unfinished line

    def drop_rows_from(self, step: int) -> None:
        path = Path(self.metrics_file_path)
        self.metrics = [row for row in self.metrics if int(row["step"]) < step]
        if path.is_file():
            header, rows = read_metrics(path)
            kept = [row for row in rows if int(float(row["step"])) < step]
            if len(kept) < len(rows):
                log.info("%s: dropped the rows of steps >= %d, which the resumed run trains again", path, step)
                write_metrics(path, header, kept)


class CSVLogger(LightningCSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` that writes every row at once and continues a resumed run's file.

    Args: Lightning's (``flush_logs_every_n_steps`` is 1: a kill loses no row).
    """

    def __init__(self, *args: Any, flush_logs_every_n_steps: int = 1, **kwargs: Any) -> None:
        super().__init__(*args, flush_logs_every_n_steps=flush_logs_every_n_steps, **kwargs)

    @property
    def experiment(self) -> _ContinuedWriter:
        if self._experiment is None and rank_zero_only.rank == 0:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuedWriter(log_dir=self.log_dir)
        return super().experiment

    @rank_zero_only
    def resume_at(self, step: int) -> None:
        """The run goes on from a checkpoint of global step ``step``: drop the rows logged at that step and after
        (a row's ``step`` counts the optimizer steps taken before it was logged)."""
        self.experiment.drop_rows_from(step)
