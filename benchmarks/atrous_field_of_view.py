"""Atrous rate vs field of view at a fixed parameter count: the seed idea, measured.

    python benchmarks/atrous_field_of_view.py [--size 257] [--samples 4]

A ResNet-18 at output stride 8 with a LargeFOV head (3x3 atrous conv, 256 channels) whose rate is swept. For each
rate: parameters (identical), the theoretical span of the head's 3x3 taps (2r+1 feature pixels, (2r)*8+1 image
pixels) and the effective receptive field of the centre output pixel: the side of the smallest centred square
holding 50% / 90% of its input gradient, averaged over random inputs (random weights, eval mode).
"""

from __future__ import annotations

import argparse
import functools
import platform
import time

import torch

from seglab.models import Segmentor, build_backbone
from seglab.models.complexity import count_parameters
from seglab.models.decoders import LargeFOVDecoder
from seglab.models.receptive_field import centred_extent, effective_receptive_field, field_of_view

OUTPUT_STRIDE = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=257, help="square input side in pixels")
    parser.add_argument("--samples", type=int, default=4, help="random inputs averaged")
    parser.add_argument("--rates", type=int, nargs="+", default=[1, 2, 4, 8, 12])
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"ResNet-18 (random weights), output stride {OUTPUT_STRIDE}, LargeFOV head, {args.size}x{args.size} input, "
          f"{args.samples} samples")
    print(f"{'rate':>4} {'parameters':>12} {'taps (feature px)':>18} {'taps (image px)':>16} {'ERF 50%':>8} {'ERF 90%':>8} {'s':>5}")
    centre = (args.size // 2, args.size // 2)
    for rate in args.rates:
        torch.manual_seed(0)  # the same weights for every rate: only the spacing of the taps changes
        head = functools.partial(LargeFOVDecoder, channels=256, rate=rate)
        net = Segmentor(build_backbone("resnet18", None, OUTPUT_STRIDE), head, num_classes=5)
        start = time.perf_counter()
        erf = effective_receptive_field(net, (args.size, args.size), samples=args.samples)
        seconds = time.perf_counter() - start
        span = field_of_view(3, rate)
        print(
            f"{rate:>4} {count_parameters(net):>12,} {span:>18} {(span - 1) * OUTPUT_STRIDE + 1:>16} "
            f"{erf.extent:>8} {centred_extent(erf.gradient, centre, 0.9):>8} {seconds:>5.1f}"
        )


if __name__ == "__main__":
    main()
