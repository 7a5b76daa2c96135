"""Writes a tiny Cityscapes tree in the official layout and file naming, with real label ids (void ones too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CITIES = {"train": ["aachen", "bochum"], "val": ["frankfurt"], "test": ["berlin"]}


def write_cityscapes_tree(root: Path, size: tuple[int, int] = (64, 128), per_city: int = 2, seed: int = 0) -> Path:
    """Create ``root/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and ``root/gtFine/...*_gtFine_labelIds.png``.

    Label maps are blocks of label ids drawn from 0..33 (every id of the official table, void ones included), so
    both trained and ignored ids appear. Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    height, width = size
    for split, cities in CITIES.items():
        for city in cities:
            for index in range(per_city):
                stem = f"{city}_{index:06d}_{19 + index:06d}"
                image_dir = root / "leftImg8bit" / split / city
                label_dir = root / "gtFine" / split / city
                image_dir.mkdir(parents=True, exist_ok=True)
                label_dir.mkdir(parents=True, exist_ok=True)
                blocks = rng.integers(0, 34, size=(height // 8, width // 8), dtype=np.uint8)
                label_ids = np.kron(blocks, np.ones((8, 8), dtype=np.uint8))
                image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
                Image.fromarray(image).save(image_dir / f"{stem}_leftImg8bit.png")
                Image.fromarray(label_ids, mode="L").save(label_dir / f"{stem}_gtFine_labelIds.png")
    return root
