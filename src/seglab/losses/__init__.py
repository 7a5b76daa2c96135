"""Segmentation losses; each takes ``(logits (N, C, H, W), target (N, H, W))`` and honours ``ignore_index``."""

from seglab.losses.cross_entropy import CrossEntropyLoss

__all__ = ["CrossEntropyLoss"]
