"""Parameters and GFLOPs of every model preset with its paper backbone, next to torchvision's DeepLabV3.

    python benchmarks/model_report.py [--height 512 --width 1024]

Each preset is built as for Cityscapes (19 classes, the preset's backbone and output stride, random weights)
and measured by the same code as ``python -m seglab report`` (FLOPs counted on the meta device: 2 per
multiply-add).
"""

from __future__ import annotations

import argparse
import platform

import torch
from hydra.utils import instantiate
from torch import nn

from seglab.config.compose import compose_config
from seglab.models.complexity import count_flops, count_parameters

PRESETS = ["fcn", "deeplabv1", "deeplabv2", "deeplabv3", "deeplabv3plus", "pspnet", "sppnet", "smp"]


class TorchvisionLogits(nn.Module):
    """torchvision's segmentation models return a dict; keep the main logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)["out"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    args = parser.parse_args()
    size = (args.height, args.width)

    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}; input {args.height}x{args.width}")
    print(f"{'model':<46} {'backbone':<10} {'OS':>3} {'params (M)':>10} {'GFLOPs':>8}")
    for preset in PRESETS:
        cfg = compose_config("train", [f"model={preset}", "data=cityscapes", "model.backbone.weights=null"])
        net = instantiate(cfg.model, _convert_="partial").net
        name = f"model={preset} ({type(net.decoder).__name__})"
        print(
            f"{name:<46} {cfg.model.backbone.name:<10} {net.backbone.output_stride:>3} "
            f"{count_parameters(net) / 1e6:>10.2f} {count_flops(net, size) / 1e9:>8.1f}"
        )
    from torchvision.models.segmentation import deeplabv3_resnet101

    reference = deeplabv3_resnet101(weights=None, weights_backbone=None, aux_loss=False, num_classes=19)
    print(
        f"{'torchvision deeplabv3_resnet101':<46} {'resnet101':<10} {8:>3} "
        f"{count_parameters(reference) / 1e6:>10.2f} {count_flops(TorchvisionLogits(reference), size) / 1e9:>8.1f}"
    )


if __name__ == "__main__":
    main()
