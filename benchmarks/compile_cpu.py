"""What ``model.compile=true`` does to a CPU training step: CPU seconds per step with and without it, and the
one-off compile cost of the first steps.

    python benchmarks/compile_cpu.py [--rounds 7] [--steps 10] [overrides ...]

Both sides are the same task built from the run's config (default: ``experiment=quickstart``) with the same weights,
batches and optimizer; ``model.compile`` compiles its backbone and decoder as training does. After both have compiled
(their first ``--warmup`` steps, timed apart), they alternate over ``--rounds`` rounds of ``--steps`` steps, each
side first in every other round, timed in process CPU seconds (``time.process_time``) so other load on the machine
counts less than in wall time. The figure is the median over rounds of compiled / eager seconds per step.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from hydra.utils import instantiate

from seglab.config.builders import build_datamodule
from seglab.config.compose import compose_config


def build(overrides: list[str], compile_: bool):
    cfg = compose_config("train", [*overrides, f"model.compile={str(compile_).lower()}"])
    torch.manual_seed(0)
    module = instantiate(cfg.model, _convert_="partial").train()
    optimizer = instantiate(cfg.optimizer)(module.parameters())
    return cfg, module, optimizer


def train_steps(module, optimizer, batches: list[dict]) -> float:
    """CPU seconds per step over ``batches``."""
    start = time.process_time()
    for batch in batches:
        loss = module.compute_loss(module.net(module.images(batch)), batch["mask"].long())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return (time.process_time() - start) / len(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("overrides", nargs="*", default=["experiment=quickstart"])
    args = parser.parse_args()
    overrides = args.overrides or ["experiment=quickstart"]
    cfg, eager, eager_optimizer = build(overrides, False)
    _, compiled, compiled_optimizer = build(overrides, True)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    loader = iter(datamodule.train_dataloader())
    batches = [next(loader) for _ in range(args.steps)]
    sides = {"eager": (eager, eager_optimizer), "compiled": (compiled, compiled_optimizer)}
    first = {name: train_steps(*side, batches[: args.warmup]) * args.warmup for name, side in sides.items()}
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for round_index in range(args.rounds):
        for name in sorted(sides, reverse=round_index % 2 == 1):
            seconds[name].append(train_steps(*sides[name], batches))
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"config: {' '.join(overrides)}; batch {cfg.data.batch_size} x {list(cfg.data.crop_size)}")
    print(f"first {args.warmup} steps: eager {first['eager']:.1f} CPU s, compiled {first['compiled']:.1f} CPU s (compiling)")
    for name, values in seconds.items():
        print(f"{name:<9} CPU s/step: median {statistics.median(values):.3f} ({', '.join(f'{v:.3f}' for v in values)})")
    ratios = [c / e for c, e in zip(seconds["compiled"], seconds["eager"])]
    print(f"compiled / eager per step: median {statistics.median(ratios):.2f}x (min {min(ratios):.2f}, max {max(ratios):.2f})")


if __name__ == "__main__":
    main()
