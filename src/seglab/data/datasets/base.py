"""What the datasets share: finding their files with clear errors, building samples, applying the transforms."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from seglab.data.instances import tidy_instances
from seglab.data.io import image_tensor, read_image, read_label
from seglab.data.labels import LabelMapper
from seglab.runtime.errors import UserError


def require_root(root: str | Path | None, dataset: str, layout: str) -> Path:
    """``data.root`` as a Path; a missing setting or folder is a :class:`UserError` that shows the layout."""
    if root is None or str(root) == "":
        raise UserError(f"data.root is not set for {dataset}; {layout}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise UserError(f"data.root={path} does not exist; {layout}")
    return path


def require_dir(folder: Path, layout: str) -> Path:
    if not folder.is_dir():
        raise UserError(f"{folder} is missing; {layout}")
    return folder


def require_samples(samples: list, split: str, where: str, layout: str) -> list:
    """``samples`` unless the split is empty, which is a :class:`UserError` naming where nothing was found."""
    if not samples:
        raise UserError(f"the {split!r} split is empty: no samples in {where}; {layout}")
    return samples


def match_pairs(
    images: Mapping[str, Path],
    labels: Mapping[str, Path],
    image_for: Callable[[str], Path],
    label_for: Callable[[str], Path],
) -> list[tuple[Path, Path]]:
    """(image, label map) pairs by key, sorted; an image without label map or a label map without image is an
    error naming the file and the one it lacks (``image_for`` / ``label_for`` give the expected paths)."""
    for missing, have, expected, kind in (
        (sorted(images.keys() - labels.keys()), images, label_for, "image {} has no label map: {} is missing"),
        (sorted(labels.keys() - images.keys()), labels, image_for, "label map {} has no image: {} is missing"),
    ):
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise UserError(kind.format(have[missing[0]], expected(missing[0])) + more)
    return [(images[key], labels[key]) for key in sorted(images)]


def make_sample(image: np.ndarray, mask: np.ndarray, image_path: Path, label_path: Path) -> dict[str, Any]:
    """``{"image": Image CxHxW uint8, "mask": Mask HxW uint8}``; image and label map must have the same size."""
    if mask.shape[:2] != image.shape[:2]:
        raise UserError(
            f"image {image_path} is {image.shape[1]}x{image.shape[0]} but its label map {label_path} is "
            f"{mask.shape[1]}x{mask.shape[0]} (width x height); they must match pixel for pixel"
        )
    return {
        "image": image_tensor(image),
        "mask": tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(mask))),
    }


class SegmentationDataset(Dataset):
    """Base class: subclasses load raw samples, this applies the joint transforms and tidies instance targets.

    Subclasses implement ``__len__``, ``load(index)`` (``{"image", "mask"}`` and, when ``return_instances``,
    ``"instances"`` as :mod:`seglab.data.instances` describes) and ``sample_name(index)``.
    """

    def __init__(self, split: str, transforms: Callable | None = None, return_instances: bool = False) -> None:
        self.split = split
        self.transforms = transforms
        self.return_instances = return_instances

    def load(self, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def sample_name(self, index: int) -> str:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.load(index)
        if self.transforms is not None:
            sample = self.transforms(sample)
        if "instances" in sample:
            sample["instances"] = tidy_instances(sample["instances"])
        sample["name"] = self.sample_name(index)
        return sample


class ImageLabelDataset(SegmentationDataset):
    """A dataset of (image file, label map file) pairs in ``self.samples``, labels mapped by ``self.labels``."""

    samples: list[tuple[Path, Path]]
    labels: LabelMapper

    def __len__(self) -> int:
        return len(self.samples)

    def read_mask(self, label_path: Path) -> np.ndarray:
        return self.labels(read_label(label_path), label_path)

    def label_mask(self, index: int) -> np.ndarray:
        """The class-id mask of sample ``index`` without decoding its image (for label statistics)."""
        return self.read_mask(self.samples[index][1])

    def load(self, index: int) -> dict[str, Any]:
        image_path, label_path = self.samples[index]
        return make_sample(read_image(image_path), self.read_mask(label_path), image_path, label_path)

    def sample_name(self, index: int) -> str:
        return self.samples[index][0].stem
