"""MLflow: a team's self-hosted tracking server, or a local SQLite store when no server is given.

The run id is kept in ``<run dir>/mlflow/run_id``; a run resumed from one of its checkpoints continues the same
MLflow run, without logging twice the metrics of the steps it trains again.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Mapping

from lightning.pytorch.loggers import MLFlowLogger as LightningMLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

from seglab.config.compose import job_run_name
from seglab.runtime.distributed import is_rank_zero
from seglab.runtime.extras import require_extra
from seglab.tracking.resumed import not_recorded, previous_run_id, save_run_id

RUN_ID_FILE = Path("mlflow") / "run_id"
log = logging.getLogger(__name__)


class MLFlowLogger(LightningMLFlowLogger):
    """``lightning.pytorch.loggers.MLFlowLogger`` that continues a run it resumes.

    MLflow cannot delete logged values, so :meth:`resume_at` counts the values the run already holds from the
    resumed step on, and :meth:`log_metrics` leaves those out: every step appears once, with the value the
    interrupted run logged (the same value, when the run is deterministic). Parameters a resumed run
    logs again keep their first value (MLflow refuses to change one); new ones are added.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorded: Counter[tuple[str, int]] = Counter()

    @rank_zero_only
    def resume_at(self, step: int) -> None:
        client = self.experiment
        self.recorded = Counter(
            (key, m.step)
            for key in client.get_run(self.run_id).data.metrics
            for m in client.get_metric_history(self.run_id, key)
            if m.step >= step
        )

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        fresh = not_recorded(metrics, step or 0, self.recorded) if self.recorded else metrics
        if fresh:
            super().log_metrics(fresh, step)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        logged = self.experiment.get_run(self.run_id).data.params
        super().log_hyperparams({key: value for key, value in dict(params).items() if key not in logged})


def create_mlflow_logger(
    experiment_name: str = "seglab",
    run_name: str | None = None,
    tracking_uri: str | None = None,
    save_dir: str = "mlruns",
    run_dir: str | None = None,
    resume_from: str | None = None,
    **kwargs: Any,
) -> MLFlowLogger:
    """An :class:`MLFlowLogger` for ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else a local store:
    ``<save_dir>/mlflow.db`` (SQLite) with artifacts in ``<save_dir>/artifacts``, which
    ``mlflow ui --backend-store-uri sqlite:///<save_dir>/mlflow.db`` shows. A relative ``save_dir`` (the config's
    ``${paths.log_dir}/mlruns``) is made absolute from the working directory at start, whatever ``hydra.run.dir``:
    every run of one ``paths.log_dir`` shares the store, so its runs compare in one ``mlflow ui``.

    Credentials for a server come from MLflow's own variables (``MLFLOW_TRACKING_TOKEN``,
    ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``), never from the config.

    Args:
        run_dir: the training run's directory, where the MLflow run id is kept (``mlflow/run_id``).
        resume_from: the checkpoint a resumed run starts from; its run directory's MLflow run continues.
    """
    tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    local_store = not tracking_uri or tracking_uri.startswith("sqlite")  # which also needs SQLAlchemy and Alembic
    require_extra("mlflow", "logger=mlflow", None if local_store else ("mlflow",))
    if not tracking_uri:  # MLflow no longer takes new runs in a plain folder store: use SQLite
        store = Path(save_dir).resolve()
        store.mkdir(parents=True, exist_ok=True)
        tracking_uri = f"sqlite:///{store / 'mlflow.db'}"
        kwargs.setdefault("artifact_location", (store / "artifacts").as_uri())
        if is_rank_zero():
            log.info("MLflow: local store %s (open it with: mlflow ui --backend-store-uri %s)", store, tracking_uri)
    run_id = kwargs.pop("run_id", None) or previous_run_id(resume_from, RUN_ID_FILE, run_dir)
    name = job_run_name(run_name)
    logger = MLFlowLogger(experiment_name=experiment_name, run_name=name, tracking_uri=tracking_uri, run_id=run_id, **kwargs)
    if run_dir is not None:
        _keep_run_id(logger, Path(run_dir) / RUN_ID_FILE)
    return logger


@rank_zero_only
def _keep_run_id(logger: MLFlowLogger, path: Path) -> None:
    save_run_id(path, logger.run_id)  # asking for the id creates the MLflow run: on rank 0 only
