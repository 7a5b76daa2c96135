"""LightningModules: the training logic of each task."""

from seglab.tasks.semantic import SemanticSegmentationModule

__all__ = ["SemanticSegmentationModule"]
