"""Dataset readers. Each returns samples ``{"image": Image, "mask": Mask, "name": str}`` after its transforms."""

from seglab.data.datasets.cityscapes import CityscapesDataset
from seglab.data.datasets.synthetic import SyntheticShapes

__all__ = ["CityscapesDataset", "SyntheticShapes"]
