"""TensorBoard event files that survive a kill and that a resumed run continues: ``<run dir>/tensorboard``.

Events are flushed to disk as they are logged (the SummaryWriter's default queue of two minutes would be lost to a
kill), and a run resumed into the same directory marks, with TensorBoard's own restart event (``SessionLog.START``,
what ``SummaryWriter(purge_step=...)`` writes), that the events of the steps it trains again replace those of the
interrupted run: TensorBoard then shows one curve without duplicated steps.
"""

from __future__ import annotations

from typing import Any, Mapping

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

from seglab.runtime.extras import require_extra


class TensorBoardLogger(LightningTensorBoardLogger):
    """``lightning.pytorch.loggers.TensorBoardLogger`` that flushes every log call and continues resumed runs."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        require_extra("tensorboard", "logger=tensorboard")
        super().__init__(*args, **kwargs)

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        super().log_metrics(metrics, step)
        self.experiment.flush()

    @rank_zero_only
    def resume_at(self, step: int) -> None:
        """The run goes on from a checkpoint of global step ``step``: hide the earlier events of that step and later."""
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog

        writer = self.experiment._get_file_writer()
        writer.add_event(Event(step=step, session_log=SessionLog(status=SessionLog.START)))
        writer.flush()

    def log_hyperparams(self, params: Any, metrics: Any = None, step: int | None = None) -> None:
        super().log_hyperparams(params, metrics, step)
        self.experiment.flush()
