"""Pixel counts per class over a split's label maps (the statistics behind ``loss.class_weights=auto``), cached.

Each label map costs one ``bincount``; maps are read without transforms (augmentation would skew the counts),
through the dataset's ``label_mask(index)`` when it has one (no image decoding) or else ``dataset[index]["mask"]``,
in ``num_workers`` loader processes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from seglab.runtime.errors import UserError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelCounts:
    """Labelled-pixel statistics of one split.

    Attributes:
        pixels: ``pixels[c]`` = pixels labelled ``c`` over the split (ignored pixels are not counted).
        image_pixels: ``image_pixels[c]`` = labelled pixels of the images in which class ``c`` appears (the
            denominator of the class frequency in median-frequency balancing).
        num_images: how many label maps were counted.
    """

    pixels: np.ndarray
    image_pixels: np.ndarray
    num_images: int

    def to_json(self) -> dict:
        return {"num_images": self.num_images, "pixels": self.pixels.tolist(), "image_pixels": self.image_pixels.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> LabelCounts:
        return cls(np.asarray(data["pixels"], dtype=np.int64), np.asarray(data["image_pixels"], dtype=np.int64), int(data["num_images"]))


class _MaskHistograms(Dataset):
    """The class histogram (``num_classes`` counts) of each label map of ``dataset``."""

    def __init__(self, dataset: Dataset, num_classes: int, ignore_index: int) -> None:
        self.dataset = dataset
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> np.ndarray:
        label_mask = getattr(self.dataset, "label_mask", None)
        values = np.asarray(label_mask(index) if label_mask is not None else self.dataset[index]["mask"]).ravel()
        if values.size and values.min() < 0:  # signed labels, e.g. ignore_index=-1
            values = values[values != self.ignore_index]
        if values.size and values.min() < 0:
            self._refuse(index, int(values.min()))
        histogram = np.bincount(values, minlength=self.num_classes)  # the ignore value gets a bin too: drop it
        if 0 <= self.ignore_index < len(histogram):
            histogram[self.ignore_index] = 0
        if histogram[self.num_classes :].any():
            self._refuse(index, self.num_classes + int(np.flatnonzero(histogram[self.num_classes :])[0]))
        return histogram[: self.num_classes]

    def _refuse(self, index: int, value: int) -> None:
        raise UserError(
            f"label map {index} of the training split holds the value {value}, which is neither a class "
            f"(0..{self.num_classes - 1}) nor data.ignore_index={self.ignore_index}; check data.num_classes and the labels"
        )


def count_labels(dataset: Dataset, num_classes: int, ignore_index: int, num_workers: int = 0) -> LabelCounts:
    """Count the labelled pixels of every class over ``dataset`` (transforms should be off)."""
    pixels = np.zeros(num_classes, dtype=np.int64)
    image_pixels = np.zeros(num_classes, dtype=np.int64)
    loader = DataLoader(_MaskHistograms(dataset, num_classes, ignore_index), batch_size=None, num_workers=num_workers)
    # A bar on a terminal (stderr, as Lightning's), none in a log file; the caller logs the count and the time.
    for histogram in tqdm(loader, total=len(dataset), desc="counting labels", unit="map", disable=None, leave=False):
        histogram = np.asarray(histogram)
        pixels += histogram
        image_pixels[histogram > 0] += histogram.sum()
    return LabelCounts(pixels, image_pixels, len(dataset))


def cached_label_counts(
    dataset: Dataset, num_classes: int, ignore_index: int, cache_file: Path, num_workers: int = 0
) -> LabelCounts:
    """:func:`count_labels`, read from ``cache_file`` when it holds counts of a split of the same length."""
    if cache_file.is_file():
        counts = LabelCounts.from_json(json.loads(cache_file.read_text()))
        if counts.num_images == len(dataset) and len(counts.pixels) == num_classes:
            log.info("Label counts read from %s", cache_file)
            return counts
        log.info("Label counts in %s are stale (%d images, now %d): counting again", cache_file, counts.num_images, len(dataset))
    log.info("Counting the labelled pixels of %d label maps", len(dataset))
    start = time.monotonic()
    counts = count_labels(dataset, num_classes, ignore_index, num_workers)
    log.info("Counted the labels of %d maps in %.1f s", counts.num_images, time.monotonic() - start)
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        partial.write_text(json.dumps(counts.to_json()) + "\n")
        partial.replace(cache_file)  # atomic: several processes (DDP ranks) may write at once
        log.info("Label counts cached in %s", cache_file)
    except OSError as err:
        log.warning("Could not cache the label counts in %s (%s); they will be counted again next run", cache_file, err)
    return counts
