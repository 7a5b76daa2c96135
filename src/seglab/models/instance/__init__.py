"""Instance segmentation models: Panoptic-DeepLab (bottom-up) and Mask R-CNN (top-down) on seglab backbones."""

from seglab.models.instance.maskrcnn import FPNBackbone, build_maskrcnn
from seglab.models.instance.panoptic_deeplab import PanopticDeepLab

__all__ = ["FPNBackbone", "PanopticDeepLab", "build_maskrcnn"]
