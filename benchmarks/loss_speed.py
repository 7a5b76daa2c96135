"""Time one forward + backward pass of every loss option on a Cityscapes-like batch of logits.

    python benchmarks/loss_speed.py [--batch 8] [--height 128] [--width 256] [--classes 19] [--device cpu]

Logits are random, a tenth of the pixels ignored. Prints, per option, the best of several repeats (the one least
disturbed by other processes) and its ratio to cross-entropy's, so the options' costs compare on one machine.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from hydra.utils import instantiate

from seglab.config.compose import compose_config

OPTIONS = sorted((path.stem for path in (Path(__file__).resolve().parents[1] / "conf" / "loss").glob("*.yaml")), key=lambda o: (o != "ce", o))


def time_loss(loss_fn: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor, repeats: int) -> float:
    seconds = []
    for _ in range(repeats + 1):  # the first call warms up
        logits.grad = None
        if logits.is_cuda:
            torch.cuda.synchronize()
        start = time.perf_counter()
        loss_fn(logits, target).backward()
        if logits.is_cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - start)
    return min(seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--classes", type=int, default=19)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    shape = (args.batch, args.height, args.width)
    target = torch.randint(0, args.classes, shape, generator=generator)
    target[torch.rand(shape, generator=generator) < 0.1] = 255
    logits = torch.randn(args.batch, args.classes, *shape[1:], generator=generator)
    logits, target = logits.to(args.device).requires_grad_(), target.to(args.device)
    names = [f"c{i}" for i in range(args.classes)]

    device = torch.cuda.get_device_name() if logits.is_cuda else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"device: {device}; torch {torch.__version__}; logits {tuple(logits.shape)}")
    print(f"{'loss':<14} {'ms':>9} {'x ce':>6}")
    for option in OPTIONS:  # ce first
        cfg = compose_config("train", [f"loss={option}", f"data.num_classes={args.classes}", f"data.class_names=[{','.join(names)}]"])
        seconds = time_loss(instantiate(cfg.loss, _convert_="partial").to(args.device), logits, target, args.repeats)
        baseline = seconds if option == "ce" else baseline
        print(f"{option:<14} {seconds * 1000:9.1f} {seconds / baseline:6.1f}")


if __name__ == "__main__":
    main()
