"""GPU out-of-memory errors become one message that says which settings to lower."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from omegaconf import DictConfig

from seglab.runtime.errors import UserError


@contextmanager
def explain_out_of_memory(cfg: DictConfig, training: bool) -> Iterator[None]:
    """Turn a CUDA out-of-memory error raised inside into a :class:`UserError` naming the batch and crop settings
    (``training``: those of training and validation; else those of evaluation) and their current values."""
    try:
        yield
    except torch.cuda.OutOfMemoryError as err:
        data, trainer = cfg.data, cfg.trainer
        where = str(err).splitlines()[0] if str(err) else "CUDA out of memory"
        evaluation = (
            f"data.val_batch_size (now {data.get('val_batch_size') or data.batch_size}), or inference=slide with a "
            f"smaller inference.crop_size"
        )
        if training:
            advice = (
                f"lower data.batch_size (now {data.batch_size}) or data.crop_size (now {list(data.crop_size or [])}) "
                f"and keep the effective batch with trainer.accumulate_grad_batches (now "
                f"{trainer.get('accumulate_grad_batches', 1)}), or use trainer.precision=16-mixed or bf16-mixed (now "
                f"{trainer.get('precision')}); if it ran out while validating, lower {evaluation}"
            )
        else:
            advice = f"lower {evaluation}"
        raise UserError(f"the GPU ran out of memory ({where}): {advice}") from None
