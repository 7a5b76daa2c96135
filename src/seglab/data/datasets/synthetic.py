"""A procedurally generated shapes dataset: trains in minutes on a CPU, needs no download.

Each image holds a few shapes (disk, square, triangle, cross) at random positions, sizes and rotations over a
textured background. Each shape class has a typical colour, widely jittered so that neighbouring classes overlap,
and the background takes any colour: colour hints at the class but does not separate the classes; shape and each
class's surface pattern (flat, stripes, checks, grid) do. Every sample is a pure function of
(seed, split, index), so runs are reproducible and no files are written. Besides the semantic mask, each
sample has an instance map (0 = background, 1..K = objects in drawing order, later objects occlude earlier).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torchvision import tv_tensors

from seglab.data.datasets.base import SegmentationDataset
from seglab.data.instances import make_instances, masks_from_id_map
from seglab.runtime.errors import UserError

CLASS_NAMES = ("background", "disk", "square", "triangle", "cross")
SPLIT_IDS = {"train": 0, "val": 1, "test": 2}
DEFAULT_LENGTHS = {"train": 512, "val": 64, "test": 64}
MIN_CONTRAST = 0.25
# Typical colour of each shape class; objects jitter around it by up to COLOUR_JITTER per channel, and the
# background takes any colour, so colour hints at the class without separating the classes.
CLASS_COLOURS = np.array([[0.5, 0.5, 0.5], [0.8, 0.3, 0.3], [0.3, 0.8, 0.3], [0.3, 0.3, 0.8], [0.8, 0.8, 0.3]])
COLOUR_JITTER = 0.3


def _object_colour(cls: int, rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """The class's typical colour, jittered widely (classes overlap), and at least ``MIN_CONTRAST`` from the
    background in some channel so the shape stays visible."""
    while True:
        colour = np.clip(CLASS_COLOURS[cls] + rng.uniform(-COLOUR_JITTER, COLOUR_JITTER, size=3), 0, 1)
        if np.abs(colour - background).max() >= MIN_CONTRAST:
            return colour


def _background(rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, base: np.ndarray) -> np.ndarray:
    """A base colour under a few slow random plane waves, plus noise."""
    waves = np.zeros(ys.shape, dtype=np.float32)
    for _ in range(3):
        period = rng.uniform(12.0, 32.0)
        angle = rng.uniform(0, math.pi)
        waves += np.sin(2 * math.pi / period * (xs * math.cos(angle) + ys * math.sin(angle)) + rng.uniform(0, 7))
    tint = rng.uniform(-1, 1, size=3) * 0.05
    return base + waves[..., None] * tint + rng.normal(0, 0.03, size=(*ys.shape, 3))


def _surface(cls: int, rng: np.random.Generator, ys: np.ndarray, xs: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The surface of a shape of class ``cls``: its own pattern (flat, stripes, checks, grid) in a random colour."""
    angle = rng.uniform(0, math.pi)
    u = xs * math.cos(angle) + ys * math.sin(angle)
    v = -xs * math.sin(angle) + ys * math.cos(angle)
    if cls == 1:  # disk: flat
        pattern = np.zeros(ys.shape, dtype=np.float32)
    elif cls == 2:  # square: stripes
        pattern = np.sign(np.sin(2 * math.pi * u / 8.0))
    elif cls == 3:  # triangle: checks
        pattern = np.sign(np.sin(2 * math.pi * u / 10.0) * np.sin(2 * math.pi * v / 10.0))
    else:  # cross: grid lines
        pattern = np.where((np.mod(u, 8.0) < 2.5) | (np.mod(v, 8.0) < 2.5), 1.0, -1.0)
    return base + pattern[..., None] * 0.12 + rng.normal(0, 0.03, size=(*ys.shape, 3))


def _shape_mask(cls: int, dx: np.ndarray, dy: np.ndarray, radius: float, angle: float) -> np.ndarray:
    """Pixels inside shape ``cls`` of circumradius ``radius`` centred at (0, 0), rotated by ``angle``."""
    u = dx * math.cos(angle) + dy * math.sin(angle)
    v = -dx * math.sin(angle) + dy * math.cos(angle)
    if cls == 1:  # disk
        return u**2 + v**2 <= radius**2
    if cls == 2:  # square
        half = radius / math.sqrt(2)
        return (np.abs(u) <= half) & (np.abs(v) <= half)
    if cls == 3:  # equilateral triangle: inside all three edges at distance radius/2 from the centre
        inside = np.ones(u.shape, dtype=bool)
        for k in range(3):
            theta = 2 * math.pi * k / 3
            inside &= u * math.cos(theta) + v * math.sin(theta) <= radius / 2
        return inside
    if cls == 4:  # cross (plus sign) with arms a third of the radius thick
        arm = radius / 3
        return ((np.abs(u) <= radius) & (np.abs(v) <= arm)) | ((np.abs(v) <= radius) & (np.abs(u) <= arm))
    raise ValueError(f"unknown shape class {cls}")


class SyntheticShapes(SegmentationDataset):
    """Random shapes over textured backgrounds; 5 classes (background + 4 shapes).

    Args:
        split: ``train``, ``val`` or ``test``; each split draws different images.
        transforms: joint transforms applied to the sample dict.
        lengths: number of images per split.
        image_size: [height, width] of the generated images.
        num_objects: [min, max] shapes per image.
        radius_range: [min, max] shape circumradius as a fraction of the image's shorter side.
        seed: base seed; the same seed gives the same images.
        return_instances: also return ``sample["instances"]`` (each visible shape, labelled with its class).
    """

    class_names = CLASS_NAMES

    def __init__(
        self,
        split: str = "train",
        transforms: Callable | None = None,
        lengths: Mapping[str, int] = DEFAULT_LENGTHS,
        image_size: Sequence[int] = (64, 64),
        num_objects: Sequence[int] = (1, 4),
        radius_range: Sequence[float] = (0.12, 0.25),
        seed: int = 0,
        return_instances: bool = False,
    ) -> None:
        super().__init__(split, transforms, return_instances)
        if split not in SPLIT_IDS:
            raise UserError(f"synthetic data has splits {list(SPLIT_IDS)}, not {split!r}")
        if split not in lengths:
            raise UserError(f"data.dataset.lengths has no entry for split {split!r}")
        self.length = int(lengths[split])
        self.height, self.width = (int(v) for v in image_size)
        self.num_objects = tuple(int(v) for v in num_objects)
        self.radius_range = tuple(float(v) for v in radius_range)
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def generate(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return (image HxWx3 uint8, semantic mask HxW uint8, instance map HxW int32) for ``index``."""
        if not 0 <= index < self.length:
            raise IndexError(index)
        rng = np.random.default_rng((self.seed, SPLIT_IDS[self.split], index))
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float32)
        background = rng.uniform(0.1, 0.9, size=3)
        image = _background(rng, ys, xs, background)
        semantic = np.zeros((self.height, self.width), dtype=np.uint8)
        instances = np.zeros((self.height, self.width), dtype=np.int32)
        short_side = min(self.height, self.width)
        for instance_id in range(1, rng.integers(self.num_objects[0], self.num_objects[1] + 1) + 1):
            cls = int(rng.integers(1, len(CLASS_NAMES)))
            radius = rng.uniform(*self.radius_range) * short_side
            cy = rng.uniform(0, self.height)
            cx = rng.uniform(0, self.width)
            inside = _shape_mask(cls, xs - cx, ys - cy, radius, rng.uniform(0, 2 * math.pi))
            image[inside] = _surface(cls, rng, ys, xs, _object_colour(cls, rng, background))[inside]
            semantic[inside] = cls
            instances[inside] = instance_id
        return (np.clip(image, 0, 1) * 255).round().astype(np.uint8), semantic, instances

    def load(self, index: int) -> dict[str, Any]:
        image, semantic, id_map = self.generate(index)
        sample = {
            "image": tv_tensors.Image(torch.from_numpy(image.transpose(2, 0, 1).copy())),
            "mask": tv_tensors.Mask(torch.from_numpy(semantic)),
        }
        if self.return_instances:
            ids = np.unique(id_map[id_map > 0])  # shapes hidden by later ones have no pixel left
            labels = [int(semantic[id_map == i][0]) for i in ids]
            sample["instances"] = make_instances(masks_from_id_map(id_map, ids), labels, [False] * len(ids))
        return sample

    def sample_name(self, index: int) -> str:
        return f"{self.split}_{index:06d}"
