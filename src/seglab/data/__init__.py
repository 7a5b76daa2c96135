"""Datasets, transforms and the Lightning DataModule."""

from seglab.data.datamodule import SegmentationDataModule

__all__ = ["SegmentationDataModule"]
