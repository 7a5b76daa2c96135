"""Evaluation throughput and peak memory of each inference mode (whole image, sliding window).

    python benchmarks/inference_throughput.py [--height 512] [--width 1024] [--images 4] [--crop 512 512] [overrides ...]

The network of ``python train.py <overrides>`` (default: ``experiment=quickstart``, DeepLabV3+ / ResNet-18), random weights, in eval mode under
``torch.inference_mode``, scores ``--images`` random images of height x width one at a time after one warm-up image.
Each mode runs in a fresh process so that its peak memory is its own: on a GPU the peak memory torch allocated, on
the CPU how far the process's peak resident memory grew above what it held before the first image.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import platform
import resource
import time
from typing import Callable

import torch
from hydra.utils import instantiate

from seglab.config.compose import compose_config
from seglab.inference import slide_inference, whole_inference


def inference_modes(crop: list[int]) -> dict[str, Callable]:
    """Each mode as ``mode(net, images) -> logits``."""
    return {"whole": whole_inference, "slide": functools.partial(slide_inference, crop_size=crop)}


def measure(mode: str, args: argparse.Namespace, results: multiprocessing.Queue) -> None:
    device = torch.device(args.device)
    net = instantiate(compose_config("train", ["experiment=quickstart", *args.overrides]).model, _convert_="partial").net.to(device).eval()
    infer = inference_modes(args.crop)[mode]
    images = torch.randn(1, 3, args.height, args.width, device=device)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with torch.inference_mode():
        infer(net, images)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for _ in range(args.images):
            infer(net, images).argmax(dim=1).cpu()
        seconds = time.perf_counter() - start
    if device.type == "cuda":
        peak_mib = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024
    results.put((mode, args.images / seconds, peak_mib))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--crop", type=int, nargs=2, default=[512, 512], help="slide window [h, w]")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. model/backbone=resnet50")
    args = parser.parse_args()

    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    rows = []
    for mode in inference_modes(args.crop):
        process = context.Process(target=measure, args=(mode, args, results))
        process.start()
        rows.append(results.get())
        process.join()

    with open("/proc/loadavg") as loadavg:
        load = " ".join(loadavg.read().split()[:3])
    device = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, load average {load}"
    print(f"device: {device}; torch {torch.__version__}; {args.images} images of {args.height}x{args.width}, batch 1")
    print("| mode | images/s | peak memory (MiB) |\n|---|---|---|")
    for mode, rate, peak_mib in rows:
        print(f"| {mode} | {rate:.2f} | {peak_mib:.0f} |")


if __name__ == "__main__":
    main()
