"""The logged mIoU recomputed from a run's own predictions: a broken metric, label or prediction path disagrees.

Add ``RECORD_VALIDATION`` to a training run's overrides, then ``assert_miou_is_recomputed(metrics)``. The
recomputation shares no code with :mod:`seglab.metrics`: per class IoU = TP / (TP + FP + FN) over the pixels whose
label is not 255, averaged over the classes that occur in the labels or the predictions (seglab's convention:
a class absent from both has no IoU).
"""

from __future__ import annotations

import numpy as np
import pytest

RECORD_VALIDATION = "+callbacks.record_validation._target_=tests.helpers.probes.ValidationRecorder"


def recomputed_miou(ignore_index: int = 255) -> float:
    """The mIoU of the label maps the last validation epoch predicted (recorded by ``RECORD_VALIDATION``)."""
    from tests.helpers.probes import ValidationRecorder  # imports Lightning: only where a run was recorded

    recorded = ValidationRecorder.last
    assert recorded and recorded["targets"], "no validation batch was recorded: add RECORD_VALIDATION to the run"
    predictions = np.concatenate([p.numpy().ravel() for p in recorded["predictions"]])
    targets = np.concatenate([t.numpy().ravel() for t in recorded["targets"]])
    assert predictions.shape == targets.shape, "predictions are not at the labels' resolution"
    scored = targets != ignore_index
    predictions, targets = predictions[scored], targets[scored]
    ious = [
        np.sum((predictions == c) & (targets == c)) / np.sum((predictions == c) | (targets == c))
        for c in np.union1d(predictions, targets)
    ]
    return float(np.mean(ious))


def assert_miou_is_recomputed(metrics: dict[str, float], name: str = "val/mIoU") -> None:
    """The run's ``name`` equals the mIoU recomputed from its last validation epoch's predictions and labels."""
    assert metrics[name] == pytest.approx(recomputed_miou(), abs=1e-6)
