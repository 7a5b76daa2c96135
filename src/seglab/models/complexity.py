"""Model size and cost: parameter counts and floating-point operations at a given input size."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def count_flops(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> int:
    """Floating-point operations of one forward pass on a ``1 x in_channels x H x W`` input, in eval mode.

    Counted by torch's ``FlopCounterMode`` (a multiply-add is 2 FLOPs; convolutions and matrix products, not
    normalisation or activations) on a copy of the model on the meta device: no memory, no computation.
    """
    meta_model = meta_copy(model)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta_model(torch.empty(1, in_channels, *input_size, device="meta"))
    return counter.get_total_flops()


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in eval mode on the meta device: forward passes compute shapes only."""
    return copy.deepcopy(model).to("meta").eval()
