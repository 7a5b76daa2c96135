"""Time the dense CRF on one full-size image: 512 x 1024 pixels, 19 classes, 10 mean-field iterations.

    python benchmarks/crf_speed.py [--height 512] [--width 1024] [--classes 19] [--device cpu] [--threads 2]

The image is a synthetic-shapes scene (seglab's built-in dataset) at that size; the unary is a noisy softmax
that favours the scene's labels. Times each method that handles the size (the permutohedral lattice, and
pydensecrf where installed; the exact method costs O(P^2) per iteration and is timed on a 64 x 64 crop) with
DeepLab v1's parameters, and prints wall and CPU time (``time.process_time``, all threads of this process) and
the load average, so a figure from a shared machine can be told apart. Also prints how far the lattice's
labels are from pydensecrf's.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import time

import torch

from seglab.data.datasets.synthetic import SyntheticShapes
from seglab.inference.crf import DenseCRF


def scene(height: int, width: int, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    image, mask, _ = SyntheticShapes(split="val", image_size=(height, width)).generate(0)
    generator = torch.Generator().manual_seed(0)
    logits = 2.0 * torch.randn(classes, height, width, generator=generator)
    labels = torch.from_numpy(mask).long() % classes
    logits += 3.0 * torch.nn.functional.one_hot(labels, classes).permute(2, 0, 1)
    return torch.softmax(logits, dim=0)[None], torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()


def timed(crf: DenseCRF, probs: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, float, float]:
    if probs.is_cuda:
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    refined = crf(probs, images)
    if probs.is_cuda:
        torch.cuda.synchronize()
    return refined, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    probs, images = scene(args.height, args.width, args.classes)
    probs, images = probs.to(args.device), images.to(args.device)
    device = torch.cuda.get_device_name() if probs.is_cuda else platform.processor() or platform.machine()
    print(f"device: {device}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"image {args.height}x{args.width}, {args.classes} classes, DeepLab v1 parameters, 10 iterations")
    print(f"{'method':<15} {'size':>10} {'wall s':>8} {'CPU s':>8}")

    crop_probs, crop_images = probs[..., :64, :64], images[..., :64, :64]
    _, wall, cpu = timed(DenseCRF(method="exact"), crop_probs, crop_images)
    crop = "x".join(str(side) for side in crop_probs.shape[-2:])
    print(f"{'exact':<15} {crop:>10} {wall:8.2f} {cpu:8.2f}")
    size = f"{args.height}x{args.width}"
    lattice, wall, cpu = timed(DenseCRF(method="permutohedral"), probs, images)
    print(f"{'permutohedral':<15} {size:>10} {wall:8.2f} {cpu:8.2f}")
    if importlib.util.find_spec("pydensecrf") is None:
        print("pydensecrf: not installed (pip install 'seglab[crf]')")
    else:
        reference, wall, cpu = timed(DenseCRF(method="pydensecrf"), probs.cpu(), images.cpu())
        print(f"{'pydensecrf':<15} {size:>10} {wall:8.2f} {cpu:8.2f}   (C++, one thread, CPU only)")
        agreement = (lattice.argmax(1).cpu() == reference.argmax(1)).float().mean().item()
        print(f"labels of permutohedral and pydensecrf agree on {100 * agreement:.2f} % of the pixels")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
