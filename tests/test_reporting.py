"""The printed metrics table: summary scores, then one row per class with a column per per-class score."""

from __future__ import annotations

from seglab.tracking.metrics_file import format_metrics_table


def test_metrics_table_has_a_column_per_per_class_score_of_semantic_and_instance_models():
    metrics = {"val/mAP": 0.5, "val/IoU/car": 0.25, "val/AP/car": 0.75, "val/IoU/person": 0.125, "val/AP/person": float("nan")}
    lines = format_metrics_table(metrics, "metric").splitlines()
    assert lines[2].split() == ["val/mAP", "0.5000"]
    assert lines[4].split() == ["class", "IoU", "AP"]
    assert lines[-2].split() == ["car", "0.2500", "0.7500"]
    assert lines[-1].split() == ["person", "0.1250", "n/a"]  # NaN: no ground truth
