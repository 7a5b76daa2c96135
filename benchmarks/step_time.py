"""How the time of one training step grows with image size and batch size.

    python benchmarks/step_time.py [--sizes 64 128 256] [--batches 2 4 8] [--repeats 3] [overrides ...]

The network, loss and optimizer of ``python train.py <overrides>`` (e.g. ``experiment=quickstart``: DeepLabV3+ / ResNet-18, SGD, float32)
take plain PyTorch training steps (forward, float32 loss, backward, optimizer step; see train_overhead.py) on random
square images; each cell is the median of ``repeats`` steps after one warm-up step, in milliseconds.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from hydra.utils import instantiate
from train_overhead import plain_training_step

from seglab.config.compose import compose_config


def step_ms(module: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict, precision: str, repeats: int) -> float:
    times = []
    for _ in range(repeats + 1):  # the first step warms up
        start = time.perf_counter()
        plain_training_step(module, optimizer, batch, precision)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. model/backbone=mobilenet_v2")
    args = parser.parse_args()
    cfg = compose_config("train", args.overrides)
    torch.manual_seed(0)
    module = instantiate(cfg.model, _convert_="partial").train()
    optimizer = instantiate(cfg.optimizer)(module.parameters())

    with open("/proc/loadavg") as loadavg:
        load = " ".join(loadavg.read().split()[:3])
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, load average "
          f"{load}; torch {torch.__version__}; {cfg.model.backbone.name}, precision {cfg.trainer.precision}")  # fmt: skip
    print("| image | " + " | ".join(f"batch {b}" for b in args.batches) + " | ms per image (largest batch) |")
    print("|---" * (len(args.batches) + 2) + "|")
    for size in args.sizes:
        cells = []
        for batch_size in args.batches:
            batch = {
                "image": torch.randn(batch_size, 3, size, size),
                "mask": torch.randint(0, cfg.data.num_classes, (batch_size, size, size)),
            }
            cells.append(step_ms(module, optimizer, batch, cfg.trainer.precision, args.repeats))
        per_image = cells[-1] / args.batches[-1]
        print(f"| {size}x{size} | " + " | ".join(f"{ms:.0f} ms" for ms in cells) + f" | {per_image:.0f} |")


if __name__ == "__main__":
    main()
