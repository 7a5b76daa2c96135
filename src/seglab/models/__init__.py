"""Model parts: backbones (encoders), decoders and the segmentor that joins them to a classifier."""

from seglab.models.backbones import build_backbone
from seglab.models.segmentor import Segmentor

__all__ = ["Segmentor", "build_backbone"]
