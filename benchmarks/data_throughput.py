"""Throughput of the Cityscapes training pipeline on full-size 2048x1024 PNGs: decoding vs augmentation.

    python benchmarks/data_throughput.py [--images 6] [--draws 40] [--workers 2]

Writes a Cityscapes tree of 2048x1024 PNG pairs (street-like images of about the size of the real
``*_leftImg8bit.png`` files, block label maps) to a temporary folder, then times, in one process with one torch
thread as in a DataLoader worker:

- decode: reading the image and label PNGs and mapping label ids to train ids (``CityscapesDataset.load``);
- augmentation: the configured ``data=cityscapes`` training transforms, each one timed on its own;
- the foundation's pipeline (RandomScale over the whole image, then crop, ColorJitter with hue) for comparison;
- images/s of the real train DataLoader (``data.num_workers=0``: the work of one worker), and with ``--workers``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL
import torch
import torchvision
from hydra.utils import instantiate
from PIL import Image
from torchvision.transforms import v2

from seglab.config.compose import compose_config
from seglab.data.transforms import Normalize, RandomCropWithIgnore, RandomScale

HEIGHT, WIDTH = 1024, 2048


def street_image(rng: np.random.Generator) -> np.ndarray:
    """A smooth street-like scene (sky, facades, road) with texture and sensor noise, so the PNG compresses about
    as well as a real Cityscapes frame (2-2.5 MB)."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    image = np.empty((HEIGHT, WIDTH, 3), dtype=np.float32)
    horizon = HEIGHT * rng.uniform(0.35, 0.5)
    image[:] = np.where((ys < horizon)[..., None], [70, 130, 180], [128, 64, 128])
    for _ in range(12):  # facades, cars, poles: boxes of flat colour with a gradient
        top, left = rng.integers(0, HEIGHT - 64), rng.integers(0, WIDTH - 64)
        height, width = rng.integers(32, HEIGHT // 2), rng.integers(32, WIDTH // 4)
        image[top : top + height, left : left + width] = rng.uniform(20, 235, size=3)
    image += (np.sin(xs / rng.uniform(20, 60)) * np.cos(ys / rng.uniform(20, 60)) * 12)[..., None]
    image += rng.normal(0, 1.0, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_tree(root: Path, count: int) -> list[int]:
    rng = np.random.default_rng(0)
    sizes = []
    for index in range(count):
        stem = f"aachen_{index:06d}_000019"
        for folder in ("leftImg8bit", "gtFine"):
            (root / folder / "train" / "aachen").mkdir(parents=True, exist_ok=True)
        image_path = root / "leftImg8bit" / "train" / "aachen" / f"{stem}_leftImg8bit.png"
        Image.fromarray(street_image(rng)).save(image_path)
        blocks = rng.integers(0, 34, size=(HEIGHT // 64, WIDTH // 64), dtype=np.uint8)
        label_ids = np.kron(blocks, np.ones((64, 64), dtype=np.uint8))
        Image.fromarray(label_ids, mode="L").save(root / "gtFine" / "train" / "aachen" / f"{stem}_gtFine_labelIds.png")
        sizes.append(image_path.stat().st_size)
    return sizes


def timed(function, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def time_pipeline(transforms: v2.Compose, samples: list[dict], draws: int) -> tuple[float, dict[str, float]]:
    """Mean seconds per sample of the whole pipeline and of each of its transforms."""
    per_step = {type(t).__name__: [] for t in transforms.transforms}
    totals = []
    torch.manual_seed(0)
    for draw in range(draws):
        sample = samples[draw % len(samples)]
        total = 0.0
        for transform in transforms.transforms:
            seconds, sample = timed(transform, sample)
            per_step[type(transform).__name__].append(seconds)
            total += seconds
        totals.append(total)
    return statistics.mean(totals), {name: statistics.mean(values) for name, values in per_step.items()}


def loader_rate(cfg, workers: int, batches: int) -> float:
    cfg.data.num_workers = workers
    loader = instantiate(cfg.data, _convert_="partial").train_dataloader()
    iterator = (batch for _ in iter(int, 1) for batch in loader)  # epoch after epoch
    next(iterator)  # start-up (worker processes) is not throughput
    start = time.perf_counter()
    images = 0
    for _ in range(batches):
        images += len(next(iterator)["name"])
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6, help="PNG pairs to generate")
    parser.add_argument("--draws", type=int, default=40, help="augmentation draws to average over")
    parser.add_argument("--workers", type=int, default=0, help="also measure the loader with this many workers")
    args = parser.parse_args()
    torch.set_num_threads(1)  # what each DataLoader worker runs with

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sizes = write_tree(root, args.images)
        cfg = compose_config("train", ["data=cityscapes", f"data.root={root}", "data.batch_size=1"])
        datamodule = instantiate(cfg.data, _convert_="partial")
        dataset = datamodule.dataset(split="train", transforms=None)

        decode_times, samples = [], []
        for index in list(range(len(dataset))) * 2:
            seconds, sample = timed(dataset.load, index)
            decode_times.append(seconds)
            samples.append(sample)
        decode = statistics.median(decode_times)
        augment, steps = time_pipeline(datamodule.train_transforms, samples, args.draws)
        before = v2.Compose([
            RandomScale((0.5, 2.0)), RandomCropWithIgnore(list(cfg.data.crop_size)), v2.RandomHorizontalFlip(),
            v2.ColorJitter(0.125, 0.5, 0.5, 0.05), Normalize(),
        ])  # fmt: skip
        augment_before, steps_before = time_pipeline(before, samples, args.draws)
        rates = {0: loader_rate(cfg, 0, 2 * args.images)}
        if args.workers:
            rates[args.workers] = loader_rate(cfg, args.workers, 4 * args.images)

    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}, "
          f"torchvision {torchvision.__version__}, Pillow {PIL.__version__}; 1 torch thread per worker")
    print(f"images: {args.images} x {WIDTH}x{HEIGHT} PNG, {statistics.mean(sizes) / 1e6:.1f} MB each, "
          f"crop {list(cfg.data.crop_size)}, {args.draws} augmentation draws")
    print(f"decode (image + label PNG, id -> train id): {decode * 1e3:6.1f} ms/image")
    report("augmentation, data=cityscapes", augment, steps, decode)
    report("augmentation, foundation pipeline", augment_before, steps_before, decode)
    for workers, rate in rates.items():
        print(f"train loader, num_workers={workers}: {rate:.1f} images/s "
              f"({rate / max(workers, 1):.1f} per worker{'; in-process, the work of one worker' if not workers else ''})")


def cpu_name() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())


def report(title: str, total: float, steps: dict[str, float], decode: float) -> None:
    print(f"{title + ':':<44s}{total * 1e3:6.1f} ms/image  ({total / decode:.2f} x decode)")
    for name, seconds in steps.items():
        print(f"    {name:<24s}{seconds * 1e3:6.1f} ms")


if __name__ == "__main__":
    main()
