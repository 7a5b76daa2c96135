"""ADE20K as released for the MIT Scene Parsing challenge (SceneParse150), in its published layout.

    <root>/ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_<8 digits>.jpg
    <root>/ADEChallengeData2016/annotations/{training,validation}/ADE_{train,val}_<8 digits>.png

Annotations hold 0 ("other", not one of the 150 classes) and 1..150. Label 0 is ignored and 1..150 become class
ids 0..149 ("reduce zero label"). ``data.root`` may also be the ``ADEChallengeData2016`` folder itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from seglab.data.datasets.base import ImageLabelDataset, match_pairs, require_dir, require_root, require_samples
from seglab.data.labels import IGNORE_INDEX, LabelMapper

CLASS_NAMES = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
    "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
    "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
    "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
    "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
    "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
    "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
    "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
    "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet",
    "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
    "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher",
    "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier",
    "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)  # fmt: skip
LAYOUT = (
    "expected <root>/ADEChallengeData2016/images/<split>/*.jpg and .../annotations/<split>/*.png "
    "with splits training and validation"
)


class ADE20KDataset(ImageLabelDataset):
    """ADE20K / SceneParse150: 150 classes; label 0 ("other") is ignored.

    Args:
        root: the folder holding ``ADEChallengeData2016/`` (or that folder itself).
        split: ``training`` or ``validation`` (the folder names of the release).
        transforms: joint transforms applied to the sample dict.
        strict_labels: refuse annotation values above 150 (else map them to 255 with one warning).
    """

    class_names = CLASS_NAMES

    def __init__(
        self,
        root: str | Path | None,
        split: str = "training",
        transforms: Callable | None = None,
        strict_labels: bool = True,
    ) -> None:
        super().__init__(split, transforms)
        root = require_root(root, "ADE20K", LAYOUT)
        self.root = root / "ADEChallengeData2016" if (root / "ADEChallengeData2016").is_dir() else root
        mapping = {0: IGNORE_INDEX, **{value: value - 1 for value in range(1, len(CLASS_NAMES) + 1)}}
        self.labels = LabelMapper(mapping, strict_labels, f"0 (other, ignored) or 1..{len(CLASS_NAMES)}")
        image_dir = require_dir(self.root / "images" / split, LAYOUT)
        label_dir = require_dir(self.root / "annotations" / split, LAYOUT)
        images = {p.stem: p for p in image_dir.glob("*.jpg")}
        labels = {p.stem: p for p in label_dir.glob("*.png")}
        require_samples(list(images) + list(labels), split, f"{image_dir}/*.jpg", LAYOUT)
        self.samples = match_pairs(
            images,
            labels,
            image_for=lambda stem: image_dir / f"{stem}.jpg",
            label_for=lambda stem: label_dir / f"{stem}.png",
        )
