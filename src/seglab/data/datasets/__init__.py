"""Dataset readers. Each returns samples ``{"image": Image, "mask": Mask, "name": str}`` after its transforms,
plus ``"instances"`` when built with ``return_instances=True`` (see :mod:`seglab.data.instances`)."""

from seglab.data.datasets.ade20k import ADE20KDataset
from seglab.data.datasets.cityscapes import CityscapesDataset
from seglab.data.datasets.coco import COCOSegmentation
from seglab.data.datasets.folder import FolderDataset
from seglab.data.datasets.synthetic import SyntheticShapes
from seglab.data.datasets.voc import VOCSegmentation

__all__ = [
    "ADE20KDataset",
    "COCOSegmentation",
    "CityscapesDataset",
    "FolderDataset",
    "SyntheticShapes",
    "VOCSegmentation",
]
