"""Training throughput of train.py against a plain PyTorch loop with the same model, data, batch and precision.

    python benchmarks/train_overhead.py [--steps 40] [--warmup 5] [--rounds 3] [overrides ...]

The platform side is ``seglab.commands.train.train(cfg)``, what ``python train.py <overrides>`` runs: the real LightningModule
in a Lightning Trainer built from the run's config, with its logger (CSV), progress bar, checkpoint callback and
per-step logging left on. The plain side is a hand-written loop over the same DataLoader, network, loss (in float32),
optimizer and poly schedule (under ``torch.autocast`` for mixed precision). Both time the same window, training steps
``warmup`` .. ``steps - 1``, data loading included, and alternate ``rounds`` times (each side first in every other
round) so that other load on the machine hits both alike; the figure is the median over rounds of images/s of
train.py / images/s of the plain loop.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import tempfile
import time

import lightning as L
import torch
from hydra.utils import instantiate

from seglab.commands.train import train
from seglab.config.builders import build_datamodule
from seglab.config.compose import compose_config


class StepTimer(L.Callback):
    """Wall time from the end of training step ``warmup - 1`` to the end of the last step."""

    seconds: float = float("nan")

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()
        elif trainer.global_step == self.steps:
            StepTimer.seconds = time.perf_counter() - self.start


def platform_seconds(overrides: list[str], warmup: int, steps: int) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        timer = [f"+callbacks.step_timer._target_={__name__}.StepTimer", f"+callbacks.step_timer.warmup={warmup}",
                 f"+callbacks.step_timer.steps={steps}"]  # fmt: skip
        run = [f"trainer.max_steps={steps}", f"paths.output_dir={run_dir}", "run_name=train_overhead"]  # no Hydra runtime
        train(compose_config("train", [*overrides, *run, *timer]))
    return StepTimer.seconds


def autocast_for(precision: str) -> contextlib.AbstractContextManager:
    """What Lightning's precision setting does around the forward pass, for the plain loop."""
    if precision.startswith("bf16"):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    if precision.startswith("16"):
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def plain_training_step(module: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict, precision: str) -> None:
    """One training step as a plain PyTorch loop writes it: network under autocast, loss in float32."""
    with autocast_for(precision):
        logits = module.net(module.images(batch))
    loss = module.compute_loss(logits, batch["mask"].long())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def plain_seconds(overrides: list[str], warmup: int, steps: int) -> float:
    cfg = compose_config("train", overrides)
    L.seed_everything(cfg.seed)
    datamodule = build_datamodule(cfg)
    datamodule.setup("fit")
    module = instantiate(cfg.model, _convert_="partial").train()
    optimizer = instantiate(cfg.optimizer)(module.parameters())
    scheduler = instantiate(cfg.scheduler)(optimizer, max_steps=steps)
    for step, batch in enumerate(datamodule.train_dataloader()):
        if step == warmup:
            start = time.perf_counter()
        plain_training_step(module, optimizer, batch, cfg.trainer.precision)
        scheduler.step()
        if step + 1 == steps:
            return time.perf_counter() - start
    raise ValueError(f"the training split has fewer than {steps} batches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. trainer.precision=bf16-mixed")
    args = parser.parse_args()
    overrides = ["trainer.accelerator=cpu", *args.overrides]
    cfg = compose_config("train", overrides)
    images = (args.steps - args.warmup) * cfg.data.batch_size

    rates: dict[str, list[float]] = {"train.py": [], "plain": []}
    sides = {"train.py": platform_seconds, "plain": plain_seconds}
    for round_index in range(args.rounds):  # each side goes first in every other round
        for name in sorted(sides, reverse=round_index % 2 == 1):
            rates[name].append(images / sides[name](overrides, args.warmup, args.steps))
    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().split()[:3]
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"load average {' '.join(load)}; torch {torch.__version__}, lightning {L.__version__}")  # fmt: skip
    print(f"model {cfg.model._target_.rsplit('.', 1)[-1]} / {cfg.model.backbone.name}, batch {cfg.data.batch_size} x "
          f"{cfg.data.crop_size}, precision {cfg.trainer.precision}, steps {args.warmup}..{args.steps - 1}")  # fmt: skip
    for name, values in rates.items():
        print(f"{name:<9} images/s: median {statistics.median(values):6.2f}  ({', '.join(f'{v:.2f}' for v in values)})")
    ratios = [ours / plain for ours, plain in zip(rates["train.py"], rates["plain"])]
    print(f"ratio train.py / plain: median {statistics.median(ratios):.3f}  ({', '.join(f'{r:.3f}' for r in ratios)})")


if __name__ == "__main__":
    main()
