"""Fields of view: the theoretical one of (atrous) convolutions and the effective one measured from gradients.

A ``k x k`` kernel at atrous rate ``r`` spaces its taps ``r`` pixels apart, so it spans ``(k - 1) * r + 1``
pixels (``2r + 1`` for 3x3) with the same ``k * k`` weights. The effective receptive field (Luo et al., 2016)
is where the input gradient of one output pixel actually lies; it is usually much smaller than the theoretical
one and grows with the rates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from seglab.models.complexity import meta_copy


def field_of_view(kernel_size: int, dilation: int = 1) -> int:
    """Pixels spanned by the taps of a ``kernel_size`` kernel at atrous rate ``dilation``: ``(k - 1) * r + 1``."""
    return (kernel_size - 1) * dilation + 1


@dataclass(frozen=True)
class AtrousConv:
    """One spatial convolution, the stride of the map it runs on, and the span of its taps."""

    name: str
    kernel_size: int
    dilation: int
    stride: int  # of its input map relative to the image
    field_of_view: int  # in pixels of its input map
    field_of_view_input: int  # in image pixels: taps ``dilation * stride`` image pixels apart


def atrous_convolutions(
    model: nn.Module, input_size: tuple[int, int], prefix: str = "decoder.", in_channels: int = 3
) -> list[AtrousConv]:
    """Every spatial (``k > 1``) convolution of ``model`` whose name starts with ``prefix``, with its theoretical
    field of view. The stride each one runs at is measured by a forward pass on the meta device."""
    model = meta_copy(model)
    strides: dict[str, int] = {}

    def record(name: str):
        def hook(conv: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            strides.setdefault(name, round(input_size[1] / inputs[0].shape[-1]))

        return hook

    convs = {
        name: conv
        for name, conv in model.named_modules()
        if name.startswith(prefix) and isinstance(conv, nn.Conv2d) and max(conv.kernel_size) > 1
    }
    hooks = [conv.register_forward_hook(record(name)) for name, conv in convs.items()]
    with torch.no_grad():
        model(torch.empty(1, in_channels, *input_size, device="meta"))
    for hook in hooks:
        hook.remove()
    rows = []
    for name, conv in convs.items():
        kernel, rate, stride = conv.kernel_size[0], conv.dilation[0], strides.get(name, 0)
        span = field_of_view(kernel, rate)
        rows.append(AtrousConv(name.removeprefix(prefix), kernel, rate, stride, span, (span - 1) * stride + 1))
    return rows


@dataclass(frozen=True)
class EffectiveReceptiveField:
    """``gradient``: mean absolute input gradient of the centre output pixel, ``(H, W)``, summing to 1.
    ``extent``: side in pixels of the smallest square around the centre that holds ``mass`` of it."""

    gradient: torch.Tensor
    extent: int
    mass: float


def effective_receptive_field(
    model: nn.Module,
    input_size: tuple[int, int],
    in_channels: int = 3,
    samples: int = 1,
    mass: float = 0.5,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> EffectiveReceptiveField:
    """Measure the effective receptive field of the centre pixel of ``model``'s output map.

    The model runs in eval mode (BatchNorm with running statistics, no dropout) on ``samples`` standard normal
    inputs; the absolute gradients of the centre pixel's outputs (summed over channels) are averaged.
    """
    height, width = input_size
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    gradient = torch.zeros(height, width, dtype=torch.float64)
    try:
        for _ in range(samples):
            images = torch.randn(1, in_channels, height, width, generator=generator).to(device).requires_grad_()
            output = model(images)
            output[0, :, output.shape[-2] // 2, output.shape[-1] // 2].sum().backward()
            gradient += images.grad[0].abs().sum(dim=0).double().cpu()
    finally:
        model.train(was_training)
    gradient /= gradient.sum().clamp_min(torch.finfo(torch.float64).tiny)
    return EffectiveReceptiveField(gradient.float(), centred_extent(gradient, (height // 2, width // 2), mass), mass)


def centred_extent(weights: torch.Tensor, centre: tuple[int, int], mass: float = 0.5) -> int:
    """Side ``2k + 1`` of the smallest square centred on ``centre`` holding at least ``mass`` of ``weights``."""
    rows = torch.arange(weights.shape[0]).sub(centre[0]).abs()[:, None]
    cols = torch.arange(weights.shape[1]).sub(centre[1]).abs()[None, :]
    distance = torch.maximum(rows, cols).flatten()  # chessboard distance: squares around the centre
    per_distance = torch.bincount(distance, weights=weights.double().flatten())
    held = per_distance.cumsum(0) / per_distance.sum()
    radius = int(torch.searchsorted(held, torch.tensor([mass], dtype=held.dtype)).item())
    return 2 * min(radius, len(held) - 1) + 1
