"""Backbones: segmentation-models-pytorch encoders with atrous (dilated) last stages.

An encoder returns one feature map per stride level (1, 2, 4, 8, 16, 32) and exposes ``out_channels`` (one
entry per level) and ``output_stride``. Output stride 8 or 16 replaces the strides of the last stages by
dilation, so the deepest features keep more spatial detail at the same parameter count. A backbone that cannot
dilate is refused with the strides it supports; DeepLab v3's multi-grid sets per-block rates in the last stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import segmentation_models_pytorch as smp
import torch
from torch import nn

from seglab.runtime.errors import UserError

OUTPUT_STRIDES = (8, 16, 32)


def build_backbone(
    name: str,
    weights: str | None = None,
    output_stride: int = 16,
    in_channels: int = 3,
    multi_grid: Sequence[int] | None = None,
) -> nn.Module:
    """Build an smp encoder.

    Args:
        name: smp encoder name, e.g. ``resnet50``, ``mobilenet_v2`` or ``tu-<timm model>``.
        weights: ``imagenet`` (downloaded once into the Hugging Face cache), ``None`` for random
            initialisation, or the path of a local state dict (``.pth``/``.pt``/``.safetensors``).
        output_stride: 8, 16 or 32; 8 and 16 dilate the last stages. A backbone that cannot dilate to it
            is refused with the strides it supports.
        in_channels: number of input image channels.
        multi_grid: DeepLab v3's multi-grid, e.g. ``(1, 2, 4)``: the ``i``-th block of the last stage gets the
            rate ``32 / output_stride x multi_grid[i]`` (one entry per block). ``None`` leaves the rates.
    """
    _check_name(name)
    if output_stride not in OUTPUT_STRIDES:
        _refuse_output_stride(name, output_stride, in_channels)
    local_file = _local_weights_file(weights)
    smp_weights = None if local_file else weights
    if name.startswith("tu-") and smp_weights is not None:
        smp_weights = True  # timm encoders take a flag; the weight set is part of the name (tu-<model>.<tag>)
    try:
        encoder = smp.encoders.get_encoder(
            name, in_channels=in_channels, depth=5, weights=smp_weights, output_stride=output_stride
        )
    except (OSError, ConnectionError) as err:  # hub download failed: offline or blocked
        raise UserError(
            f"could not download {weights!r} weights for backbone {name!r} ({type(err).__name__}); "
            "without network access use model.backbone.weights=null (random initialisation) or "
            "model.backbone.weights=/path/to/encoder_state_dict.pth"
        ) from None
    except KeyError as err:  # a weight set the encoder does not have
        raise UserError(f"backbone {name!r} with weights={weights!r}: {err}") from None
    except (ValueError, TypeError, AssertionError) as err:  # smp and timm refuse strides they cannot dilate to
        if output_stride != 32:
            _refuse_output_stride(name, output_stride, in_channels)
        raise UserError(f"backbone {name!r} with output_stride={output_stride}: {err}") from None
    if local_file:
        _load_local_weights(encoder, local_file)
    if output_stride != 32 and hasattr(encoder, "get_stages"):
        _keep_previous_rate_in_first_blocks(encoder, output_stride)
    if multi_grid is not None:
        apply_multi_grid(encoder, multi_grid, name)
    return encoder


def check_backbone(name: str, output_stride: int = 16, in_channels: int = 3) -> None:
    """Refuse an unknown encoder or an output stride it cannot reach, without building it (see
    :func:`reaches_output_stride`); what :func:`build_backbone` would refuse, before any data is loaded."""
    _check_name(name)
    if output_stride not in OUTPUT_STRIDES or not reaches_output_stride(name, output_stride, in_channels):
        _refuse_output_stride(name, output_stride, in_channels)


def _check_name(name: str) -> None:
    if name not in smp.encoders.get_encoder_names() and not name.startswith("tu-"):
        raise UserError(
            f"model.backbone.name={name!r} is not an encoder segmentation-models-pytorch knows; "
            "pick one of the model/backbone options or a name from smp.encoders.get_encoder_names()"
        )


def reaches_output_stride(name: str, output_stride: int, in_channels: int = 3) -> bool:
    """Whether the encoder ``name`` really reaches ``output_stride``, found by building it on the meta device (no
    memory, no weights) and measuring its deepest features."""
    try:
        with torch.device("meta"):
            encoder = smp.encoders.get_encoder(name, in_channels=in_channels, depth=5, output_stride=output_stride)
            deepest = encoder(torch.empty(1, in_channels, 64, 64))[-1]
    except (ValueError, TypeError, AssertionError, NotImplementedError):
        return False
    return deepest.shape[-1] == 64 // output_stride


def supported_output_strides(name: str, in_channels: int = 3) -> list[int]:
    """The output strides (of 8, 16, 32) the encoder ``name`` really reaches."""
    return [stride for stride in OUTPUT_STRIDES if reaches_output_stride(name, stride, in_channels)]


def _refuse_output_stride(name: str, output_stride: int, in_channels: int) -> None:
    supported = supported_output_strides(name, in_channels)
    fix = "set model.backbone.output_stride to one of them"
    if 8 not in supported:
        fix += " or pick a backbone that dilates (e.g. resnet50, tu-xception65)"
    raise UserError(
        f"backbone {name!r} cannot reach model.backbone.output_stride={output_stride}; "
        f"it supports output strides {supported}: {fix}"
    )


def apply_multi_grid(encoder: nn.Module, multi_grid: Sequence[int], name: str = "backbone") -> None:
    """Give the ``i``-th block of the encoder's last stage the atrous rate ``stage rate x multi_grid[i]``, where
    the stage rate is ``32 / output_stride`` (DeepLab v3, Chen et al. 2017, section 3.2: (1, 2, 4) at output
    stride 16 gives rates (2, 4, 8)). Parameters do not change."""
    grid = [int(rate) for rate in multi_grid]
    if not hasattr(encoder, "get_stages"):
        raise UserError(
            f"model.backbone.multi_grid needs an encoder with named stages (smp's resnet*, mobilenet_v2, "
            f"efficientnet-*); {name} has none: set model.backbone.multi_grid=null"
        )
    blocks = _stage_blocks(encoder.get_stages()[32])
    if len(grid) != len(blocks) or min(grid, default=0) < 1:
        raise UserError(
            f"model.backbone.multi_grid={grid}: the last stage of {name} has {len(blocks)} blocks, give one "
            f"positive rate per block (e.g. {[2**i for i in range(len(blocks))]}) or null"
        )
    stage_rate = max(32 // encoder.output_stride, 1)
    for block, unit_rate in zip(blocks, grid):
        _set_rate(block, stage_rate * unit_rate)


def _keep_previous_rate_in_first_blocks(encoder: nn.Module, output_stride: int) -> None:
    """smp dilates every block of a stage alike. torchvision and timm keep the previous rate in a dilated stage's
    first block (the one whose stride was removed), so that it samples what the strided block sampled; do the
    same, which makes a dilated ResNet layer for layer torchvision's."""
    previous_rate = 1
    for stage_stride, modules in sorted(encoder.get_stages().items()):
        if stage_stride > output_stride:
            _set_rate(_stage_blocks(modules)[0], previous_rate)
            previous_rate = stage_stride // output_stride


def _stage_blocks(modules: Sequence[nn.Module]) -> list[nn.Module]:
    """The blocks of a stage (children of its sequential containers) that hold a spatial convolution."""
    blocks = []
    for module in modules:
        blocks += list(module.children()) if isinstance(module, (nn.Sequential, nn.ModuleList)) else [module]
    return [block for block in blocks if _spatial_convs(block)]


def _spatial_convs(module: nn.Module) -> list[nn.Conv2d]:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d) and max(m.kernel_size) > 1]


def _set_rate(block: nn.Module, rate: int) -> None:
    for conv in _spatial_convs(block):
        conv.dilation = (rate, rate)
        conv.padding = tuple(rate * (k // 2) for k in conv.kernel_size)


def _local_weights_file(weights: str | None) -> Path | None:
    if weights is None or weights in ("imagenet", "ssl", "swsl", "instagram", "advprop", "noisy-student"):
        return None
    path = Path(str(weights)).expanduser()
    if not path.is_file():
        raise UserError(
            f"model.backbone.weights={weights!r} is neither a known weight set (e.g. imagenet) nor an existing "
            "file; give the path of an encoder state dict, or model.backbone.weights=null for random initialisation"
        )
    return path


def _load_local_weights(encoder: nn.Module, path: Path) -> None:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state) if isinstance(state, dict) else state
    # nn.Module's own method: some smp encoders override load_state_dict and return nothing.
    missing, unexpected = nn.Module.load_state_dict(encoder, state, strict=False)
    if missing:
        raise UserError(
            f"{path} does not hold weights for this encoder: {len(missing)} parameters missing "
            f"(first: {missing[0]}); expected a state dict of the smp encoder itself"
        )
    if unexpected:
        # The classifier ("fc.*") of an ImageNet checkpoint is expected and harmless; anything else is not.
        foreign = [key for key in unexpected if not key.startswith(("fc.", "classifier."))]
        if foreign:
            raise UserError(f"{path} holds {len(foreign)} parameters this encoder does not have (first: {foreign[0]})")
