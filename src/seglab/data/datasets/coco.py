"""COCO 2017 instance annotations in their published layout, read with pycocotools.

    <root>/annotations/instances_{train2017,val2017}.json
    <root>/{train2017,val2017}/<12 digits>.jpg

Masks come from polygons, uncompressed RLE (crowd regions) and compressed RLE alike. The classes are the json's
own categories (:mod:`seglab.data.datasets.coco_categories`): their ids (COCO 2017: 1..90 with gaps) become
contiguous class ids 1..N in id order, 0 is background (``category_to_class`` / ``class_to_category`` map both
ways), so any dataset shipped in COCO's format reads as it is. Semantic mask: background 0, each object painted
with its class in annotation order (a later object wins where two overlap), crowd regions 255 (ignored).
Instance targets (``return_instances``): every annotation, crowd ones flagged ``iscrowd``.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from pycocotools.coco import COCO

from seglab.data.datasets.base import SegmentationDataset, make_sample, require_root, require_samples
from seglab.data.datasets.coco_categories import LAYOUT, annotation_file, checked_categories, class_names_of
from seglab.data.instances import make_instances
from seglab.data.io import read_image
from seglab.data.labels import IGNORE_INDEX, LabelMapper
from seglab.runtime.errors import UserError


def load_coco(path: Path) -> COCO:
    """The pycocotools index of an instances json; a missing or malformed file is a :class:`UserError`."""
    if not path.is_file():
        raise UserError(f"annotation file {path} is missing; {LAYOUT}")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            return COCO(str(path))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AssertionError) as err:
        raise UserError(f"{path} is not a COCO instances file: {type(err).__name__}: {err}") from None


class COCOSegmentation(SegmentationDataset):
    """COCO instances as semantic masks (background + the json's categories) and instance targets.

    Args:
        root: the folder holding ``annotations/`` and the image folders.
        split: ``train2017`` or ``val2017`` (any ``<split>`` with ``annotations/instances_<split>.json``).
        transforms: joint transforms applied to the sample dict.
        return_instances: also return ``sample["instances"]``.
        strict_labels: refuse annotations of categories the json does not list (else their pixels are ignored
            with one warning).
        class_names: the expected class names (``background`` then the categories in id order); the json's
            categories must match them. ``None`` takes them from the json (what ``data=coco`` does).
    """

    def __init__(
        self,
        root: str | Path | None,
        split: str = "train2017",
        transforms: Callable | None = None,
        return_instances: bool = False,
        strict_labels: bool = True,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(split, transforms, return_instances)
        self.root = require_root(root, "COCO", LAYOUT)
        self.annotation_file = annotation_file(self.root, split)
        self.coco = load_coco(self.annotation_file)
        categories = checked_categories(self.coco.dataset.get("categories"), self.annotation_file)
        self.class_to_category = {index + 1: cat["id"] for index, cat in enumerate(categories)}
        self.category_to_class = {cat_id: class_id for class_id, cat_id in self.class_to_category.items()}
        self.class_names = class_names_of(categories, self.annotation_file)
        if class_names is not None and list(class_names) != list(self.class_names):
            raise UserError(
                f"the categories of {self.annotation_file} ({len(categories)}: {', '.join(self.class_names[1:6])}"
                f"{', ...' if len(categories) > 5 else ''}) do not match data.class_names ({len(class_names) - 1} "
                "after background); leave data.class_names unset to take the classes from the json, or set it to "
                "[background, <category names in id order>]"
            )
        self.labels = LabelMapper({}, strict_labels, f"the {len(categories)} category ids listed in the file")
        self.image_ids = self._check_annotations()

    def _check_annotations(self) -> list[int]:
        image_ids = sorted(self.coco.imgs)
        require_samples(image_ids, self.split, f"the images list of {self.annotation_file}", LAYOUT)
        orphans = sorted({ann["image_id"] for ann in self.coco.anns.values()} - set(image_ids))
        if orphans:
            raise UserError(f"{self.annotation_file} has annotations of image ids it does not list, e.g. {orphans[0]}")
        unknown = sorted({ann["category_id"] for ann in self.coco.anns.values()} - set(self.category_to_class))
        if unknown:
            self.labels.refuse([f"category_id {cat}" for cat in unknown], self.annotation_file)
        image_dir = self.root / self.split
        missing = [self.image_path(i) for i in image_ids if not self.image_path(i).is_file()]
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise UserError(
                f"image {missing[0]} listed in {self.annotation_file} is missing{more}; images go in {image_dir}"
            )
        return image_ids

    def image_path(self, image_id: int) -> Path:
        return self.root / self.split / self.coco.imgs[image_id]["file_name"]

    def __len__(self) -> int:
        return len(self.image_ids)

    def sample_name(self, index: int) -> str:
        return self.image_path(self.image_ids[index]).stem

    def load(self, index: int) -> dict[str, Any]:
        image_id = self.image_ids[index]
        info, path = self.coco.imgs[image_id], self.image_path(image_id)
        image = read_image(path)
        if image.shape[:2] != (info["height"], info["width"]):
            raise UserError(
                f"image {path} is {image.shape[1]}x{image.shape[0]} but {self.annotation_file} gives "
                f"{info['width']}x{info['height']} (width x height) for it"
            )
        semantic = np.zeros(image.shape[:2], dtype=np.uint8)
        ignored = np.zeros(image.shape[:2], dtype=bool)
        masks, labels, crowd = [], [], []
        for ann in self.coco.imgToAnns[image_id]:
            mask = self._decode(ann, path).astype(bool)
            class_id = self.category_to_class.get(ann["category_id"])
            if class_id is None or ann.get("iscrowd", 0):
                ignored |= mask
            else:
                semantic[mask] = class_id
            if class_id is not None:
                masks.append(mask)
                labels.append(class_id)
                crowd.append(bool(ann.get("iscrowd", 0)))
        semantic[ignored] = IGNORE_INDEX
        sample = make_sample(image, semantic, path, self.annotation_file)
        if self.return_instances:
            stacked = torch.from_numpy(np.stack(masks)) if masks else torch.zeros(0, *image.shape[:2], dtype=torch.bool)
            sample["instances"] = make_instances(stacked, labels, crowd)
        return sample

    def _decode(self, ann: dict[str, Any], image_path: Path) -> np.ndarray:
        try:
            return self.coco.annToMask(ann)
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise UserError(
                f"annotation {ann.get('id')} of {image_path.name} in {self.annotation_file} has a segmentation "
                f"pycocotools cannot decode ({type(err).__name__}: {err})"
            ) from None
