"""Inference modes: how a network turns a batch of images into logits at the images' size.

Each mode is a small pure function ``mode(net, images, **options) -> logits``; the ``inference`` config group
binds the options with Hydra's ``_partial_`` and the task, eval.py and predict.py call the result as
``inference(net, images)``. Post-processing of their softmax (the ``postprocess`` group: the dense CRF of
:mod:`seglab.inference.crf`) is the task's, which also holds the input normalisation the CRF undoes.
"""

from seglab.inference.slide import slide_inference
from seglab.inference.tta import tta_inference
from seglab.inference.whole import whole_inference

__all__ = ["slide_inference", "tta_inference", "whole_inference"]
