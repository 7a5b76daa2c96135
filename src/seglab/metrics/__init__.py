"""Segmentation metrics computed from a confusion matrix summed over a whole split."""

from seglab.metrics.confusion import SegmentationMetrics, scores_from_confusion_matrix

__all__ = ["SegmentationMetrics", "scores_from_confusion_matrix"]
