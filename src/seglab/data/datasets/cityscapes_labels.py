"""The official Cityscapes label table (cityscapesScripts' helpers/labels.py), as data.

Only the 19 classes with a train id are trained and evaluated; every other label id maps to the ignore index.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class CityscapesLabel(NamedTuple):
    name: str
    id: int
    train_id: int  # 255 = not trained/evaluated
    category: str
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


LABELS: tuple[CityscapesLabel, ...] = (
    CityscapesLabel("unlabeled", 0, 255, "void", False, True, (0, 0, 0)),
    CityscapesLabel("ego vehicle", 1, 255, "void", False, True, (0, 0, 0)),
    CityscapesLabel("rectification border", 2, 255, "void", False, True, (0, 0, 0)),
    CityscapesLabel("out of roi", 3, 255, "void", False, True, (0, 0, 0)),
    CityscapesLabel("static", 4, 255, "void", False, True, (0, 0, 0)),
    CityscapesLabel("dynamic", 5, 255, "void", False, True, (111, 74, 0)),
    CityscapesLabel("ground", 6, 255, "void", False, True, (81, 0, 81)),
    CityscapesLabel("road", 7, 0, "flat", False, False, (128, 64, 128)),
    CityscapesLabel("sidewalk", 8, 1, "flat", False, False, (244, 35, 232)),
    CityscapesLabel("parking", 9, 255, "flat", False, True, (250, 170, 160)),
    CityscapesLabel("rail track", 10, 255, "flat", False, True, (230, 150, 140)),
    CityscapesLabel("building", 11, 2, "construction", False, False, (70, 70, 70)),
    CityscapesLabel("wall", 12, 3, "construction", False, False, (102, 102, 156)),
    CityscapesLabel("fence", 13, 4, "construction", False, False, (190, 153, 153)),
    CityscapesLabel("guard rail", 14, 255, "construction", False, True, (180, 165, 180)),
    CityscapesLabel("bridge", 15, 255, "construction", False, True, (150, 100, 100)),
    CityscapesLabel("tunnel", 16, 255, "construction", False, True, (150, 120, 90)),
    CityscapesLabel("pole", 17, 5, "object", False, False, (153, 153, 153)),
    CityscapesLabel("polegroup", 18, 255, "object", False, True, (153, 153, 153)),
    CityscapesLabel("traffic light", 19, 6, "object", False, False, (250, 170, 30)),
    CityscapesLabel("traffic sign", 20, 7, "object", False, False, (220, 220, 0)),
    CityscapesLabel("vegetation", 21, 8, "nature", False, False, (107, 142, 35)),
    CityscapesLabel("terrain", 22, 9, "nature", False, False, (152, 251, 152)),
    CityscapesLabel("sky", 23, 10, "sky", False, False, (70, 130, 180)),
    CityscapesLabel("person", 24, 11, "human", True, False, (220, 20, 60)),
    CityscapesLabel("rider", 25, 12, "human", True, False, (255, 0, 0)),
    CityscapesLabel("car", 26, 13, "vehicle", True, False, (0, 0, 142)),
    CityscapesLabel("truck", 27, 14, "vehicle", True, False, (0, 0, 70)),
    CityscapesLabel("bus", 28, 15, "vehicle", True, False, (0, 60, 100)),
    CityscapesLabel("caravan", 29, 255, "vehicle", True, True, (0, 0, 90)),
    CityscapesLabel("trailer", 30, 255, "vehicle", True, True, (0, 0, 110)),
    CityscapesLabel("train", 31, 16, "vehicle", True, False, (0, 80, 100)),
    CityscapesLabel("motorcycle", 32, 17, "vehicle", True, False, (0, 0, 230)),
    CityscapesLabel("bicycle", 33, 18, "vehicle", True, False, (119, 11, 32)),
    CityscapesLabel("license plate", -1, -1, "vehicle", False, True, (0, 0, 142)),
)

IGNORE_INDEX = 255
TRAIN_LABELS = tuple(sorted((lb for lb in LABELS if 0 <= lb.train_id < IGNORE_INDEX), key=lambda lb: lb.train_id))
CLASS_NAMES = tuple(lb.name for lb in TRAIN_LABELS)
# Train ids of the 8 classes with instances (person, rider, car, truck, bus, train, motorcycle, bicycle).
THING_TRAIN_IDS = tuple(lb.train_id for lb in TRAIN_LABELS if lb.has_instances)
# The categories of the evaluated classes (flat, construction, object, nature, sky, human, vehicle), and the two
# whose labels all have instances, which get an instance-weighted score too.
CATEGORIES = tuple(dict.fromkeys(lb.category for lb in TRAIN_LABELS))
INSTANCE_CATEGORIES = tuple(
    category for category in CATEGORIES if all(lb.has_instances for lb in LABELS if lb.category == category and lb.id >= 0)
)
# The official iIoU weighs each instance by its class's average instance size (pixels) over the Cityscapes
# annotations divided by its own size: the figures of cityscapesScripts' evalPixelLevelSemanticLabeling.
AVERAGE_INSTANCE_SIZE = {
    "person": 3462.4756337644,
    "rider": 3930.4788056518,
    "car": 12794.0202738185,
    "truck": 27855.1264367816,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "motorcycle": 6298.7200839748,
    "bicycle": 4672.3249222261,
}


def id_to_train_id_lut() -> np.ndarray:
    """A 256-entry lookup table: label id -> train id, 255 for every id without a train id."""
    lut = np.full(256, IGNORE_INDEX, dtype=np.uint8)
    for label in TRAIN_LABELS:
        lut[label.id] = label.train_id
    return lut


def train_id_palette() -> list[tuple[int, int, int]]:
    """The official colour of each train id, in train-id order."""
    return [label.color for label in TRAIN_LABELS]


def train_id_to_id_lut() -> np.ndarray:
    """A 256-entry lookup table: train id -> label id (for exporting predictions); 255 -> 0 (unlabeled)."""
    lut = np.zeros(256, dtype=np.uint8)
    for label in TRAIN_LABELS:
        lut[label.train_id] = label.id
    return lut
