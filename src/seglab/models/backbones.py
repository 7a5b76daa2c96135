"""Backbones: segmentation-models-pytorch encoders with atrous (dilated) last stages.

An encoder returns one feature map per stride level (1, 2, 4, 8, 16, 32) and exposes ``out_channels`` (one
entry per level) and ``output_stride``. Output stride 8 or 16 replaces the strides of the last stages by
dilation, so the deepest features keep more spatial detail at the same parameter count.
"""

from __future__ import annotations

from pathlib import Path

import segmentation_models_pytorch as smp
import torch
from torch import nn

from seglab.errors import UserError

SUPPORTED_OUTPUT_STRIDES = (8, 16, 32)


def build_backbone(name: str, weights: str | None = None, output_stride: int = 16, in_channels: int = 3) -> nn.Module:
    """Build an smp encoder.

    Args:
        name: smp encoder name, e.g. ``resnet50``, ``mobilenet_v2`` or ``tu-<timm model>``.
        weights: ``imagenet`` (downloaded once into the Hugging Face cache), ``None`` for random
            initialisation, or the path of a local state dict (``.pth``/``.pt``/``.safetensors``).
        output_stride: 8, 16 or 32; 8 and 16 dilate the last stages.
        in_channels: number of input image channels.
    """
    if name not in smp.encoders.get_encoder_names() and not name.startswith("tu-"):
        raise UserError(
            f"model.backbone.name={name!r} is not an encoder segmentation-models-pytorch knows; "
            "pick one of the model/backbone options or a name from smp.encoders.get_encoder_names()"
        )
    if output_stride not in SUPPORTED_OUTPUT_STRIDES:
        raise UserError(
            f"model.backbone.output_stride={output_stride} is not supported by {name}; "
            f"use one of {list(SUPPORTED_OUTPUT_STRIDES)}"
        )
    local_file = _local_weights_file(weights)
    try:
        encoder = smp.encoders.get_encoder(
            name,
            in_channels=in_channels,
            depth=5,
            weights=None if local_file else weights,
            output_stride=output_stride,
        )
    except (OSError, ConnectionError) as err:  # hub download failed: offline or blocked
        raise UserError(
            f"could not download {weights!r} weights for backbone {name!r} ({type(err).__name__}); "
            "without network access use model.backbone.weights=null (random initialisation) or "
            "model.backbone.weights=/path/to/encoder_state_dict.pth"
        ) from None
    except (KeyError, ValueError) as err:
        raise UserError(f"backbone {name!r} with weights={weights!r}, output_stride={output_stride}: {err}") from None
    if local_file:
        _load_local_weights(encoder, local_file)
    return encoder


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
