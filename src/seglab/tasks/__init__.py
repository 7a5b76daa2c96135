"""LightningModules: the training logic of each task."""

from seglab.tasks.instance import InstanceSegmentationModule
from seglab.tasks.maskrcnn import MaskRCNNModule
from seglab.tasks.panoptic_deeplab import PanopticDeepLabModule
from seglab.tasks.semantic import SemanticSegmentationModule

__all__ = ["InstanceSegmentationModule", "MaskRCNNModule", "PanopticDeepLabModule", "SemanticSegmentationModule"]
