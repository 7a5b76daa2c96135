"""The block every command ends with: where its outputs went and how to open its dashboard.

```
Run finished: /abs/outputs/train/runs/2026-12-02_10-00-00
  best checkpoint  checkpoints/best.ckpt  (val/mIoU 0.8512, epoch 11, step 440)
  metrics          metrics.json
  media            media/
  logs             train.log, csv/metrics.csv
  dashboard        tensorboard --logdir /abs/outputs/train/runs/2026-12-02_10-00-00/tensorboard
```
Paths inside the run directory are shown relative to it; others in full.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

Row = tuple[str, str]


def format_summary(title: str, directory: Path, rows: Iterable[Row | None]) -> str:
    """``title: <directory>`` then one aligned ``label  value`` line per row (``None`` rows are left out)."""
    kept = [row for row in rows if row is not None]
    width = max((len(label) for label, _ in kept), default=0)
    return "\n".join([f"{title}: {Path(directory).resolve()}", *(f"  {label:<{width}}  {value}" for label, value in kept)])


def shown(path: Path | str, directory: Path) -> str:
    """``path`` relative to ``directory`` when inside it (a folder with a trailing ``/``), else absolute."""
    path, directory = Path(path).resolve(), Path(directory).resolve()
    text = str(path.relative_to(directory)) if path.is_relative_to(directory) else str(path)
    return f"{text}/" if path.is_dir() else text


def file_row(label: str, path: Path | str, directory: Path) -> Row | None:
    """``(label, path)`` when the file or folder exists."""
    return (label, shown(path, directory)) if Path(path).exists() else None


def log_files_row(run_dir: Path, directory: Path | None = None) -> Row | None:
    """The log files of ``run_dir``: Hydra's ``<job>.log`` and the CSV logger's ``csv/metrics.csv`` (shown relative
    to the summary's ``directory``, by default ``run_dir``)."""
    files = [*sorted(Path(run_dir).glob("*.log")), *Path(run_dir).glob("csv/metrics.csv")]
    return ("logs", ", ".join(shown(f, directory or run_dir) for f in files)) if files else None


def best_checkpoint_row(checkpoint_callback: Any, directory: Path, trusted: bool = False) -> Row | None:
    """``best checkpoint  checkpoints/best.ckpt  (val/mIoU 0.8512, epoch 11, step 440)`` (epochs from 1)."""
    path = getattr(checkpoint_callback, "best_model_path", "") or ""
    if not path or not Path(path).is_file():
        return None
    from seglab.checkpointing.io import load_checkpoint

    checkpoint = load_checkpoint(path, trusted, mmap=True)
    details = []
    score = getattr(checkpoint_callback, "best_model_score", None)
    if score is not None:
        details.append(f"{checkpoint_callback.monitor} {float(score):.4f}")
    details += [f"epoch {checkpoint['epoch'] + 1}", f"step {checkpoint['global_step']}"]
    return "best checkpoint", f"{shown(path, directory)}  ({', '.join(details)})"


def dashboard_commands(loggers: Sequence[Any]) -> list[str]:
    """The command (or address) that opens each logger's dashboard on this run; CSV has none."""
    commands = []
    for logger in loggers:
        kind = type(logger).__name__
        if kind == "TensorBoardLogger":
            commands.append(f"tensorboard --logdir {Path(logger.log_dir).resolve()}")
        elif kind == "MLFlowLogger":
            commands.append(mlflow_dashboard(logger))
        elif kind == "WandbLogger" and logger._experiment is not None:
            from seglab.tracking.wandb import wandb_sync_hint

            commands.append(wandb_sync_hint(logger) or logger.experiment.url)
    return [command for command in commands if command]


def mlflow_dashboard(logger: Any) -> str:
    """``mlflow ui --backend-store-uri sqlite:///...`` for a local store; a server's address of the run otherwise."""
    uri = logger._tracking_uri
    if uri.startswith("sqlite:") or uri.startswith("file:") or "://" not in uri:
        return f"mlflow ui --backend-store-uri {uri}"
    return f"{uri.rstrip('/')}/#/experiments/{logger.experiment_id}/runs/{logger.run_id}"


def dashboard_rows(commands: Sequence[str]) -> list[Row]:
    return [("dashboard", command) for command in commands]
