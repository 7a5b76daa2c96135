"""Cityscapes in the official layout: fine annotations, coarse ones for ``train_extra``, instance targets.

    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png       splits train, val, test
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png    with return_instances
    <root>/gtCoarse/train_extra/<city>/<city>_<seq>_<frame>_gtCoarse_labelIds.png   split train_extra

Label ids are mapped to the 19 train ids of the official label table; every other id becomes 255 (ignore).
In ``*_instanceIds.png`` (16-bit) a value >= 1000 is ``label_id * 1000 + n``, instance n of a class with
instances; a smaller value is a plain label id: for the 8 thing classes (person, rider, car, truck, bus, train,
motorcycle, bicycle) that marks a group of objects without instance ids, returned as a crowd region. The raw map
itself is ``sample["instance_ids"]`` with ``instance_ids=True``: the official iIoU and instance AP score against it
(:mod:`seglab.metrics.cityscapes_pixel`, :mod:`seglab.metrics.cityscapes_instance`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torchvision import tv_tensors

from seglab.data.datasets.base import ImageLabelDataset, match_pairs, require_dir, require_root, require_samples
from seglab.data.datasets.cityscapes_labels import CLASS_NAMES, LABELS, THING_TRAIN_IDS, id_to_train_id_lut
from seglab.data.instances import make_instances, masks_from_id_map
from seglab.data.io import read_label
from seglab.data.labels import LabelMapper
from seglab.runtime.errors import UserError

IMAGE_SUFFIX = "_leftImg8bit.png"
INSTANCE_DIVISOR = 1000
LAYOUT = (
    "expected the official Cityscapes layout: <root>/leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
    "<root>/gtFine/<split>/<city>/*_gtFine_labelIds.png (gtCoarse/ for train_extra); set data.root or the "
    "CITYSCAPES_DATASET variable"
)


class CityscapesDataset(ImageLabelDataset):
    """Cityscapes images with train-id semantic masks and, optionally, instance targets.

    Args:
        root: the Cityscapes root holding ``leftImg8bit/`` and ``gtFine/`` (and ``gtCoarse/`` for train_extra).
        split: ``train``, ``val``, ``test`` (labels all void) or ``train_extra`` (coarse annotations).
        transforms: joint transforms applied to the sample dict.
        return_instances: also return ``sample["instances"]`` from ``*_instanceIds.png``.
        strict_labels: refuse label ids outside the official table (else map them to 255 with one warning).
        instance_ids: also return ``sample["instance_ids"]``, the ``*_instanceIds.png`` map as an int32
            :class:`tv_tensors.Mask` (the data config asks for it on the evaluated splits only).
    """

    class_names = CLASS_NAMES
    image_size = (1024, 2048)  # every Cityscapes image: height, width

    def __init__(
        self,
        root: str | Path | None,
        split: str = "train",
        transforms: Callable | None = None,
        return_instances: bool = False,
        strict_labels: bool = True,
        instance_ids: bool = False,
    ) -> None:
        super().__init__(split, transforms, return_instances)
        self.instance_ids = instance_ids
        self.root = require_root(root, "Cityscapes", LAYOUT)
        self.annotation = "gtCoarse" if split == "train_extra" else "gtFine"
        lut = id_to_train_id_lut()
        mapping = {label.id: int(lut[label.id]) for label in LABELS if label.id >= 0}
        self.labels = LabelMapper(mapping, strict_labels, "label ids 0..33 of the official Cityscapes label table")
        self.samples = self._find_samples()

    def _find_samples(self) -> list[tuple[Path, Path]]:
        image_dir = require_dir(self.root / "leftImg8bit" / self.split, LAYOUT)
        label_dir = require_dir(self.root / self.annotation / self.split, LAYOUT)
        label_suffix = f"_{self.annotation}_labelIds.png"
        images = {f"{p.parent.name}/{p.name[: -len(IMAGE_SUFFIX)]}": p for p in image_dir.glob(f"*/*{IMAGE_SUFFIX}")}
        labels = {f"{p.parent.name}/{p.name[: -len(label_suffix)]}": p for p in label_dir.glob(f"*/*{label_suffix}")}
        require_samples(list(images) + list(labels), self.split, f"{image_dir}/<city>/*{IMAGE_SUFFIX}", LAYOUT)
        samples = match_pairs(
            images,
            labels,
            image_for=lambda key: image_dir / f"{key}{IMAGE_SUFFIX}",
            label_for=lambda key: label_dir / f"{key}{label_suffix}",
        )
        if self.return_instances or self.instance_ids:
            needed_by = (
                "data.return_instances=true needs the *_instanceIds.png files"
                if self.return_instances
                else "the official Cityscapes scores read them: restore it, or score without them with "
                "data.cityscapes_scores=false"
            )
            for _, label in samples:
                if not self._instance_path(label).is_file():
                    missing = self._instance_path(label)
                    raise UserError(f"label map {label} has no instance map: {missing} is missing ({needed_by})")
        return samples

    @staticmethod
    def _instance_path(label_path: Path) -> Path:
        return label_path.with_name(label_path.name.replace("_labelIds.png", "_instanceIds.png"))

    def load(self, index: int) -> dict[str, Any]:
        sample = super().load(index)
        if self.return_instances or self.instance_ids:
            id_map = self._read_instance_ids(self._instance_path(self.samples[index][1]), sample["mask"].shape)
            if self.return_instances:
                sample["instances"] = self._instances(id_map)
            if self.instance_ids:
                sample["instance_ids"] = tv_tensors.Mask(torch.from_numpy(id_map.astype(np.int32, copy=False)))
        return sample

    @staticmethod
    def _read_instance_ids(path: Path, shape: tuple[int, ...]) -> np.ndarray:
        id_map = read_label(path)
        if id_map.shape != tuple(shape):
            raise UserError(
                f"instance map {path} is {id_map.shape[1]}x{id_map.shape[0]} but its label map is "
                f"{shape[1]}x{shape[0]} (width x height)"
            )
        return id_map

    def _instances(self, id_map: np.ndarray) -> dict[str, Any]:
        ids, labels, crowd = [], [], []
        for value in np.unique(id_map).tolist():
            label_id = value // INSTANCE_DIVISOR if value >= INSTANCE_DIVISOR else value
            train_id = int(self.labels.lut[min(label_id, 256)])
            if train_id in THING_TRAIN_IDS:
                ids.append(value)
                labels.append(train_id)
                crowd.append(value < INSTANCE_DIVISOR)
        return make_instances(masks_from_id_map(id_map, ids), labels, crowd)

    def sample_name(self, index: int) -> str:
        return self.samples[index][0].name[: -len(IMAGE_SUFFIX)]
