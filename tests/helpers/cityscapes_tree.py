"""Writes a tiny Cityscapes tree in the official layout and file naming, with real label ids (void ones too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CITIES = {"train": ["aachen", "bochum"], "val": ["frankfurt"], "test": ["berlin"], "train_extra": ["erlangen"]}
# Label ids of the classes with instances (person .. bicycle, caravan and trailer included).
INSTANCE_LABEL_IDS = (24, 25, 26, 27, 28, 29, 30, 31, 32, 33)


def instance_ids_for(label_ids: np.ndarray, rng: np.random.Generator, block: int = 8, quarters: float = 0.0) -> np.ndarray:
    """An ``*_instanceIds.png`` map for a label map of ``block`` x ``block`` blocks: each block of a class with
    instances is one instance (``label_id * 1000 + n``) or, for one block in four, part of a group without
    instance id (plain label id); every other pixel holds its label id. A share ``quarters`` of the instance
    blocks holds four instances of a quarter block each instead (instances of two sizes)."""
    instance_ids = label_ids.astype(np.int32)
    counter = 0
    half = block // 2
    for y in range(0, label_ids.shape[0], block):
        for x in range(0, label_ids.shape[1], block):
            label = int(label_ids[y, x])
            if label in INSTANCE_LABEL_IDS and rng.random() < 0.75:
                instance_ids[y : y + block, x : x + block] = label * 1000 + counter
                counter += 1
                if quarters and rng.random() < quarters:
                    for dy, dx in ((0, half), (half, 0), (half, half)):
                        instance_ids[y + dy : y + dy + half, x + dx : x + dx + half] = label * 1000 + counter
                        counter += 1
    return instance_ids


def write_cityscapes_tree(
    root: Path, size: tuple[int, int] = (64, 128), per_city: int = 2, seed: int = 0, block: int = 8, quarters: float = 0.0
) -> Path:
    """Create ``root/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with ``root/gtFine/...*_gtFine_labelIds.png``
    and ``*_gtFine_instanceIds.png`` (16-bit), and the coarse ``train_extra`` split under ``root/gtCoarse``.

    Label maps are ``block`` x ``block`` blocks of label ids drawn from 0..33 (every id of the official table,
    void ones included), so both trained and ignored ids appear; ``quarters``: see :func:`instance_ids_for`.
    Returns ``root``.
    """
    rng = np.random.default_rng(seed)
    instance_rng = np.random.default_rng(seed + 1)
    height, width = size
    for split, cities in CITIES.items():
        annotation = "gtCoarse" if split == "train_extra" else "gtFine"
        for city in cities:
            for index in range(per_city):
                stem = f"{city}_{index:06d}_{19 + index:06d}"
                image_dir = root / "leftImg8bit" / split / city
                label_dir = root / annotation / split / city
                image_dir.mkdir(parents=True, exist_ok=True)
                label_dir.mkdir(parents=True, exist_ok=True)
                blocks = rng.integers(0, 34, size=(height // block, width // block), dtype=np.uint8)
                label_ids = np.kron(blocks, np.ones((block, block), dtype=np.uint8))
                image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
                Image.fromarray(image).save(image_dir / f"{stem}_leftImg8bit.png")
                Image.fromarray(label_ids, mode="L").save(label_dir / f"{stem}_{annotation}_labelIds.png")
                instance_ids = instance_ids_for(label_ids, instance_rng, block, quarters).astype(np.uint16)
                Image.fromarray(instance_ids).save(label_dir / f"{stem}_{annotation}_instanceIds.png")
    return root
