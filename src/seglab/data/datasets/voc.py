"""Pascal VOC 2012 segmentation in its published layout, and the SBD-augmented training set when present.

    <root>/VOCdevkit/VOC2012/JPEGImages/<id>.jpg
    <root>/VOCdevkit/VOC2012/SegmentationClass/<id>.png          palette PNGs: 0..20, 255 = boundary (ignored)
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val,trainval}.txt
    <root>/VOCdevkit/VOC2012/SegmentationClassAug/<id>.png       split train_aug (SBD + VOC train, 10,582 ids)
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt

``data.root`` may also be the ``VOC2012`` folder itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from seglab.data.datasets.base import ImageLabelDataset, require_dir, require_root, require_samples
from seglab.data.labels import LabelMapper
from seglab.runtime.errors import UserError

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
AUG_SPLIT = "train_aug"
LAYOUT = (
    "expected <root>/VOCdevkit/VOC2012/{JPEGImages,SegmentationClass,ImageSets/Segmentation/<split>.txt} "
    "(splits train, val, trainval; train_aug with SBD's SegmentationClassAug/ and train_aug.txt)"
)


class VOCSegmentation(ImageLabelDataset):
    """Pascal VOC 2012: 21 classes (background + 20), 255 = object boundaries and difficult regions (ignored).

    Args:
        root: the folder holding ``VOCdevkit/`` (or the ``VOC2012`` folder itself).
        split: a list in ``ImageSets/Segmentation/``: ``train``, ``val``, ``trainval`` or ``train_aug``
            (masks from ``SegmentationClassAug/``; must not contain val images).
        transforms: joint transforms applied to the sample dict.
        strict_labels: refuse mask values other than 0..20 and 255 (else map them to 255 with one warning).
    """

    class_names = CLASS_NAMES

    def __init__(
        self,
        root: str | Path | None,
        split: str = "train",
        transforms: Callable | None = None,
        strict_labels: bool = True,
    ) -> None:
        super().__init__(split, transforms)
        root = require_root(root, "Pascal VOC", LAYOUT)
        self.root = root / "VOCdevkit" / "VOC2012" if (root / "VOCdevkit").is_dir() else root
        self.labels = LabelMapper.identity(len(CLASS_NAMES), strict_labels)
        self.samples = self._find_samples()

    def _read_split(self, split: str) -> list[str]:
        path = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not path.is_file():
            hint = " (the SBD-augmented set is not installed)" if split == AUG_SPLIT else ""
            raise UserError(f"split file {path} is missing{hint}; {LAYOUT}")
        return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]

    def _find_samples(self) -> list[tuple[Path, Path]]:
        image_dir = require_dir(self.root / "JPEGImages", LAYOUT)
        split_file = f"{self.root}/ImageSets/Segmentation/{self.split}.txt"
        ids = require_samples(self._read_split(self.split), self.split, split_file, LAYOUT)
        label_folder = "SegmentationClassAug" if self.split == AUG_SPLIT else "SegmentationClass"
        label_dir = require_dir(self.root / label_folder, LAYOUT)
        if self.split == AUG_SPLIT and (self.root / "ImageSets" / "Segmentation" / "val.txt").is_file():
            leaked = sorted(set(ids) & set(self._read_split("val")))
            if leaked:
                raise UserError(
                    f"{AUG_SPLIT}.txt lists {len(leaked)} images of the val split (e.g. {leaked[0]}); remove them, "
                    "or validation scores would be measured on training images"
                )
        samples = []
        for image_id in ids:
            image, label = image_dir / f"{image_id}.jpg", label_dir / f"{image_id}.png"
            if not image.is_file():
                raise UserError(f"image {image} (listed in {self.split}.txt) is missing")
            if not label.is_file():
                raise UserError(f"image {image} has no label map: {label} is missing")
            samples.append((image, label))
        return samples
