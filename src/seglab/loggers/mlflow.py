"""MLflow: a team's self-hosted tracking server, or a local SQLite store when no server is given."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import MLFlowLogger

from seglab.config import job_run_name


def create_mlflow_logger(
    experiment_name: str = "seglab",
    run_name: str | None = None,
    tracking_uri: str | None = None,
    save_dir: str = "mlruns",
    **kwargs: Any,
) -> MLFlowLogger:
    """An :class:`MLFlowLogger` for ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else a local store:
    ``<save_dir>/mlflow.db`` (SQLite) with artifacts in ``<save_dir>/artifacts``, which
    ``mlflow ui --backend-store-uri sqlite:///<save_dir>/mlflow.db`` shows.

    Credentials for a server come from MLflow's own variables (``MLFLOW_TRACKING_TOKEN``,
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``), never from the config.
    """
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:  # MLflow no longer takes new runs in a plain folder store: use SQLite
        store = Path(save_dir).resolve()
        store.mkdir(parents=True, exist_ok=True)
        tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
        kwargs.setdefault("artifact_location", (store / "artifacts").as_uri())
    return MLFlowLogger(experiment_name=experiment_name, run_name=job_run_name(run_name), tracking_uri=tracking_uri, **kwargs)
