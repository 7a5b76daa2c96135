"""What the official Cityscapes scores need from a run: the 19 Cityscapes classes, and the gtFine instance id maps
in the evaluation batches (``data.cityscapes_scores`` asks the dataset for them)."""

from __future__ import annotations

from typing import Any, Sequence

import torch

from seglab.data.datasets.cityscapes_labels import CLASS_NAMES
from seglab.runtime.errors import UserError


def require_cityscapes_classes(class_names: Sequence[str]) -> None:
    """A :class:`UserError` unless ``class_names`` are the 19 Cityscapes classes in train-id order."""
    if list(class_names) != list(CLASS_NAMES):
        raise UserError(
            f"model.cityscapes_scores=true scores the 19 Cityscapes classes, but the data has {len(class_names)} "
            f"({', '.join(list(class_names)[:3])}, ...): it is for data=cityscapes, leave it false"
        )


def require_instance_ids(batch: dict[str, Any]) -> torch.Tensor:
    """The batch's ``instance_ids`` (the gtFine instanceIds maps); a :class:`UserError` when it has none."""
    if "instance_ids" not in batch:
        raise UserError(
            "model.cityscapes_scores=true, but the evaluation batches hold no Cityscapes instance ids: the official "
            "scores need data=cityscapes with data.cityscapes_scores=true (or set model.cityscapes_scores=false)"
        )
    return batch["instance_ids"]
