"""Training throughput of train.py against an independent plain PyTorch loop with the same network and batches.

    python benchmarks/train_overhead.py [--steps 40] [--warmup 5] [--rounds 7] [overrides ...]

The platform side is ``seglab.commands.train.train(cfg)``, what ``python train.py <overrides>`` runs: the real
LightningModule in a Lightning Trainer built from the run's config, with its data module, loss, optimizer and
schedule, its logger (CSV), progress bar, checkpoint callback, media and per-step logging left on. The plain side
shares only the network's architecture and the synthetic images' generator: its own Dataset and DataLoader (flips
and normalisation written out in NumPy/torch; torch's sampler with the run's seed, so it trains on the same images
in the same order), ``torch.nn.CrossEntropyLoss``, the torch optimizer the config names
and ``torch.optim.lr_scheduler.PolynomialLR``, under ``torch.autocast`` for mixed precision.

Both sides time the same window, training steps ``warmup`` .. ``steps - 1`` with data loading, in process CPU seconds
(user + system from ``os.times``: every thread of this process), so other load on the machine counts far less than in
wall time. They alternate over ``rounds`` rounds, each side first in every other round; the figure is the median over
rounds of (plain CPU seconds / train.py CPU seconds), i.e. train.py's throughput as a fraction of the plain loop's,
with its spread. Each side's user and system CPU seconds and minor page faults are reported apart as well: on a
virtual machine that reclaims memory (``kdamond``), the system time of refaulting freed buffers varies by up to 2x
from round to round, while the user time is the work each side's code does.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import resource
import statistics
import tempfile
from typing import NamedTuple

import lightning as L
import numpy as np
import torch
from hydra.utils import get_class, instantiate
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from seglab.commands.train import train
from seglab.config.compose import compose_config

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TIMERS: list["StepTimer"] = []  # the StepTimer train() built in this round


class CpuUse(NamedTuple):
    """User and system CPU seconds and minor page faults of this process, every thread included."""

    user: float
    system: float
    faults: int

    @property
    def seconds(self) -> float:
        return self.user + self.system

    @classmethod
    def now(cls) -> "CpuUse":
        times = os.times()
        return cls(times.user, times.system, resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    def since(self) -> "CpuUse":
        """What the process used from this mark until now."""
        return CpuUse(*(now - then for now, then in zip(CpuUse.now(), self)))


class StepTimer(L.Callback):
    """Process CPU use from the end of training step ``warmup - 1`` to the end of step ``steps - 1``; a new instance
    (and a fresh ``None``) every round, so a round that stops early cannot report an earlier one's figure."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.start = self.cpu = None
        TIMERS.append(self)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup:
            self.start = CpuUse.now()
        elif trainer.global_step == self.steps:
            self.cpu = self.start.since()


def platform_cpu(overrides: list[str], warmup: int, steps: int) -> CpuUse:
    TIMERS.clear()
    with tempfile.TemporaryDirectory() as run_dir:
        timer = [f"+callbacks.step_timer._target_={__name__}.StepTimer", f"+callbacks.step_timer.warmup={warmup}",
                 f"+callbacks.step_timer.steps={steps}"]  # fmt: skip
        run = [f"trainer.max_steps={steps}", f"paths.output_dir={run_dir}", "run_name=train_overhead", "print_config=false"]
        train(compose_config("train", [*overrides, *run, *timer]))
    if len(TIMERS) != 1 or TIMERS[0].cpu is None:
        raise RuntimeError(f"train.py stopped before training step {steps}: no figure for this round")
    return TIMERS[0].cpu


class PlainShapes(Dataset):
    """The synthetic images and masks as a plain loop would feed them: random flips, ImageNet normalisation."""

    def __init__(self, generator, flips: bool) -> None:
        self.generator, self.flips = generator, flips

    def __len__(self) -> int:
        return len(self.generator)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask, _ = self.generator.generate(index)
        if self.flips:
            for axis in (1, 0):  # horizontal, then vertical, each with probability 0.5
                if np.random.random() < 0.5:
                    image, mask = np.flip(image, axis), np.flip(mask, axis)
        image = (image.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(mask.astype(np.int64))


def autocast_for(precision: str) -> contextlib.AbstractContextManager:
    if precision.startswith("bf16"):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def plain_cpu(overrides: list[str], warmup: int, steps: int) -> CpuUse:
    cfg = compose_config("train", overrides)
    if not cfg.data.dataset._target_.endswith("SyntheticShapes"):
        raise SystemExit("the plain side generates the synthetic shapes: run it with data=synthetic")
    torch.manual_seed(cfg.seed)
    generator = instantiate(cfg.data.dataset, _partial_=False, split=cfg.data.train_split, transforms=None, return_instances=False)
    # torch's own sampler with the run's seed draws the samples in train.py's order: a step's cost depends on its
    # images, so both sides must train on the same ones.
    sampler = DistributedSampler(generator, num_replicas=1, rank=0, shuffle=True, seed=cfg.seed)
    loader = DataLoader(PlainShapes(generator, flips=True), batch_size=cfg.data.batch_size, sampler=sampler,
                        drop_last=True, num_workers=cfg.data.num_workers)  # fmt: skip
    network = instantiate(cfg.model, _convert_="partial").net.train()
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=cfg.data.ignore_index)
    options = {k: v for k, v in cfg.optimizer.items() if not k.startswith("_")}
    optimizer = get_class(cfg.optimizer._target_)(network.parameters(), **options)
    scheduler = torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=steps, power=cfg.scheduler.get("power", 0.9))
    for step, (images, masks) in enumerate(loader):
        if step == warmup:
            start = CpuUse.now()
        with autocast_for(cfg.trainer.precision):
            logits = network(images)
        loss = loss_fn(logits.float(), masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step + 1 == steps:
            return start.since()
    raise SystemExit(f"the training split has fewer than {steps} batches: lower --steps")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("overrides", nargs="*", help="train.py overrides, e.g. trainer.precision=bf16-mixed")
    args = parser.parse_args()
    overrides = ["trainer.accelerator=cpu", *(args.overrides or ["experiment=quickstart"])]
    cfg = compose_config("train", overrides)

    cpu: dict[str, list[CpuUse]] = {"train.py": [], "plain": []}
    sides = {"train.py": platform_cpu, "plain": plain_cpu}
    for round_index in range(args.rounds):  # each side goes first in every other round
        for name in sorted(sides, reverse=round_index % 2 == 1):
            cpu[name].append(sides[name](overrides, args.warmup, args.steps))
    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().split()[:3]
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"load average {' '.join(load)}; torch {torch.__version__}, lightning {L.__version__}")  # fmt: skip
    print(f"model {cfg.model._target_.rsplit('.', 1)[-1]} / {cfg.model.backbone.name}, batch {cfg.data.batch_size} x "
          f"{list(cfg.data.crop_size)}, precision {cfg.trainer.precision}, steps {args.warmup}..{args.steps - 1}")  # fmt: skip
    images = (args.steps - args.warmup) * cfg.data.batch_size
    for name, rounds in cpu.items():
        rates = [images / r.seconds for r in rounds]
        print(f"{name:<9} images per CPU second: median {statistics.median(rates):6.2f}  ({', '.join(f'{r:.2f}' for r in rates)}); "
              f"median user {statistics.median(r.user for r in rounds):.2f} s, system {statistics.median(r.system for r in rounds):.2f} s, "
              f"{statistics.median(r.faults for r in rounds):.0f} minor page faults")  # fmt: skip
    for label, field in (("CPU", "seconds"), ("user CPU", "user")):
        ratios = [getattr(plain, field) / getattr(ours, field) for ours, plain in zip(cpu["train.py"], cpu["plain"])]
        print(f"ratio train.py / plain, {label}: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, "
              f"max {max(ratios):.3f}, {len(ratios)} rounds)")  # fmt: skip


if __name__ == "__main__":
    main()
