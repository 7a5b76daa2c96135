"""Lightning's model summary without its FLOPs column and "Total Flops" line when they say nothing: Lightning counts
FLOPs only for modules given an ``example_input_array``, so seglab's models all read 0."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import ModelSummary as LightningModelSummary
from lightning.pytorch.callbacks.model_summary import log
from lightning.pytorch.utilities.model_summary.model_summary import _format_summary_table


class ModelSummary(LightningModelSummary):
    """``lightning.pytorch.callbacks.ModelSummary`` that leaves the FLOPs out when none were counted."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            LightningModelSummary.summarize(
                summary_data, total_parameters, trainable_parameters, model_size, total_training_modes, total_flops,
                **summarize_kwargs,
            )  # fmt: skip
            return
        columns = [column for column in summary_data if column[0] != "FLOPs"]
        table = _format_summary_table(total_parameters, trainable_parameters, model_size, total_training_modes, 0, *columns)
        log.info("\n" + table.rsplit("\n", 1)[0])  # the last line is "0  Total Flops"
