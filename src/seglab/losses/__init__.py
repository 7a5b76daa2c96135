"""Segmentation losses; each takes ``(logits (N, C, H, W), target (N, H, W))`` and honours ``ignore_index``.

Dice, Jaccard and Tversky come from segmentation-models-pytorch (``conf/loss/``), whose multiclass forms
mask ignored pixels correctly; the focal and Lovasz losses are written here (see their modules for why).
"""

from seglab.losses.combined import CombinedLoss
from seglab.losses.cross_entropy import CrossEntropyLoss
from seglab.losses.focal import FocalLoss
from seglab.losses.lovasz import LovaszSoftmaxLoss
from seglab.losses.ohem import OhemCrossEntropyLoss

__all__ = ["CombinedLoss", "CrossEntropyLoss", "FocalLoss", "LovaszSoftmaxLoss", "OhemCrossEntropyLoss"]
