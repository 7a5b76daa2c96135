"""Time the inference modes and the ONNX export on one image, and check the export against PyTorch.

    python benchmarks/inference_modes.py [--height 256] [--width 512] [--backbone resnet18]

DeepLabV3+ with random weights (the cost does not depend on them) on one RGB image. Slide uses half-size
crops (windows of [h/2, w/2], stride two thirds of the crop: 3 x 3 windows); TTA the tta config's four scales with
flip (8 views). Prints the median time of a few runs per mode, and the exported ONNX model's time under
onnxruntime (whole image, normalisation built in) and its largest logit difference from PyTorch.
"""

from __future__ import annotations

import argparse
import functools
import platform
import statistics
import tempfile
import time
from pathlib import Path

import onnxruntime
import torch

from seglab.commands.export import DeployableSegmentor, export_onnx
from seglab.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from seglab.inference import slide_inference, tta_inference, whole_inference
from seglab.models import Segmentor, build_backbone
from seglab.models.decoders import DeepLabV3PlusDecoder


def median_seconds(run, repeats: int = 3) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--backbone", default="resnet18")
    args = parser.parse_args()

    torch.manual_seed(0)
    net = Segmentor(build_backbone(args.backbone, None, 16), DeepLabV3PlusDecoder, num_classes=19).eval()
    images = torch.randn(1, 3, args.height, args.width)
    crop = (args.height // 2, args.width // 2)
    modes = {
        "whole": whole_inference,
        "slide": functools.partial(slide_inference, crop_size=crop),
        "tta": functools.partial(tta_inference, scales=[0.75, 1.0, 1.25, 1.5], flip=True),
    }
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"DeepLabV3+ / {args.backbone}, 19 classes, one {args.height}x{args.width} image")
    with torch.inference_mode():
        for name, mode in modes.items():
            print(f"{name:>6}: {median_seconds(lambda: mode(net, images)) * 1000:8.0f} ms")

    deployable = DeployableSegmentor(net, IMAGENET_MEAN, IMAGENET_STD).eval()
    pixels = torch.rand(1, 3, args.height, args.width) * 255
    with tempfile.TemporaryDirectory() as folder:
        session = onnxruntime.InferenceSession(str(export_onnx(deployable, Path(folder) / "model.onnx")))
    run = lambda: session.run(None, {"image": pixels.numpy()})[0]  # noqa: E731
    with torch.no_grad():
        difference = abs(run() - deployable(pixels).numpy()).max()
    print(f"  onnx: {median_seconds(run) * 1000:8.0f} ms (onnxruntime, whole image), max |logit difference| {difference:.1e}")


if __name__ == "__main__":
    main()
