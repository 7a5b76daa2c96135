"""Cityscapes fine annotations in the official layout.

    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png

Label ids are mapped to the 19 train ids of the official label table; every other id becomes 255 (ignore).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from seglab.data.datasets.cityscapes_labels import CLASS_NAMES, id_to_train_id_lut
from seglab.data.io import read_image, read_label
from seglab.errors import UserError

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
LAYOUT = (
    "expected the official Cityscapes layout: <root>/leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
    "<root>/gtFine/<split>/<city>/*_gtFine_labelIds.png (set data.root or the CITYSCAPES_DATASET variable)"
)


class CityscapesDataset(Dataset):
    """Cityscapes images with train-id semantic masks.

    Args:
        root: the Cityscapes root holding ``leftImg8bit/`` and ``gtFine/``.
        split: ``train``, ``val`` or ``test`` (test labels are all void).
        transforms: joint transforms applied to ``{"image", "mask"}``.
    """

    class_names = CLASS_NAMES

    def __init__(self, root: str | Path | None, split: str = "train", transforms: Callable | None = None) -> None:
        if root is None or str(root) == "":
            raise UserError(f"data.root is not set for Cityscapes; {LAYOUT}")
        self.root = Path(root).expanduser()
        self.split = split
        self.transforms = transforms
        self.lut = id_to_train_id_lut()
        self.samples = self._find_samples()

    def _find_samples(self) -> list[tuple[Path, Path]]:
        if not self.root.is_dir():
            raise UserError(f"data.root={self.root} does not exist; {LAYOUT}")
        image_dir = self.root / "leftImg8bit" / self.split
        label_dir = self.root / "gtFine" / self.split
        for folder in (image_dir, label_dir):
            if not folder.is_dir():
                raise UserError(f"{folder} is missing: {self.root} is not a Cityscapes tree; {LAYOUT}")
        images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
        if not images:
            raise UserError(f"no *{IMAGE_SUFFIX} images under {image_dir}; {LAYOUT}")
        samples = []
        for image in images:
            stem = image.name[: -len(IMAGE_SUFFIX)]
            label = label_dir / image.parent.name / f"{stem}{LABEL_SUFFIX}"
            if not label.is_file():
                raise UserError(f"image {image} has no label map: {label} is missing")
            samples.append((image, label))
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_path, label_path = self.samples[index]
        image = read_image(image_path)
        label_ids = read_label(label_path)
        if label_ids.shape != image.shape[:2]:
            raise UserError(
                f"image {image_path} is {image.shape[1]}x{image.shape[0]} but its label map {label_path} is "
                f"{label_ids.shape[1]}x{label_ids.shape[0]}"
            )
        sample = {
            "image": tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))),
            "mask": tv_tensors.Mask(torch.from_numpy(self.lut[label_ids])),
        }
        if self.transforms is not None:
            sample = self.transforms(sample)
        sample["name"] = image_path.name[: -len(IMAGE_SUFFIX)]
        return sample
