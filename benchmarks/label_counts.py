"""Time counting the training labels for ``loss.class_weights=auto`` on Cityscapes-sized label maps.

    python benchmarks/label_counts.py [--maps 100] [--workers 0]

Writes ``--maps`` 1024x2048 label maps in the official Cityscapes layout (blocks of random label ids, which
decode slower than real, smoother maps; the images are empty files, since counting reads labels only) and times
one uncached count through the CityscapesDataset. Scale by 2975/maps for the full fine training split.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from seglab.data.datasets import CityscapesDataset
from seglab.data.label_stats import count_labels


def write_label_tree(root: Path, maps: int) -> None:
    rng = np.random.default_rng(0)
    for index in range(maps):
        stem = f"aachen_{index:06d}_000019"
        for folder, suffix in (("leftImg8bit", "leftImg8bit"), ("gtFine", "gtFine_labelIds")):
            (root / folder / "train" / "aachen").mkdir(parents=True, exist_ok=True)
        blocks = rng.integers(0, 34, size=(1024 // 32, 2048 // 32), dtype=np.uint8)
        Image.fromarray(np.kron(blocks, np.ones((32, 32), dtype=np.uint8))).save(
            root / "gtFine" / "train" / "aachen" / f"{stem}_gtFine_labelIds.png"
        )
        (root / "leftImg8bit" / "train" / "aachen" / f"{stem}_leftImg8bit.png").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=100)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        write_label_tree(Path(root), args.maps)
        dataset = CityscapesDataset(root, "train")
        start = time.perf_counter()
        counts = count_labels(dataset, num_classes=19, ignore_index=255, num_workers=args.workers)
        seconds = time.perf_counter() - start
    print(f"machine: {platform.processor() or platform.machine()}, {args.workers} loader workers")
    print(f"{counts.num_images} label maps of 1024x2048: {seconds:.2f} s ({seconds / counts.num_images * 1000:.1f} ms per map);"
          f" full Cityscapes train (2975 maps): about {seconds / counts.num_images * 2975:.0f} s")


if __name__ == "__main__":
    main()
