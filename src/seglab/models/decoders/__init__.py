"""Decoders: modules that turn the encoder's multi-stride features into a map for the classifier.

Every decoder takes ``encoder_channels`` (channels per stride level 1, 2, 4, 8, 16, 32, as smp encoders list
them) and ``output_stride`` as its first constructor arguments, exposes ``out_channels``, and maps the list of
encoder features to a single tensor. A decoder whose constructor also takes ``num_classes`` produces class
logits itself (e.g. DeepLab v2's summed ASPP classifiers); the segmentor then adds no classifier of its own.

Building blocks usable on their own: :class:`ASPP` (atrous spatial pyramid pooling, keeps height and width)
and :class:`SPP` (spatial pyramid pooling to a fixed-length vector).
"""

from seglab.models.decoders.aspp import ASPP
from seglab.models.decoders.aspp_v2 import ASPPV2Decoder
from seglab.models.decoders.deeplabv3 import DeepLabV3Decoder
from seglab.models.decoders.deeplabv3plus import DeepLabV3PlusDecoder
from seglab.models.decoders.fcn import FCNDecoder
from seglab.models.decoders.largefov import LargeFOVDecoder
from seglab.models.decoders.pyramid_pooling import PyramidPoolingDecoder
from seglab.models.decoders.smp_arch import SMPDecoder
from seglab.models.decoders.spp import SPP

__all__ = [
    "ASPP",
    "ASPPV2Decoder",
    "DeepLabV3Decoder",
    "DeepLabV3PlusDecoder",
    "FCNDecoder",
    "LargeFOVDecoder",
    "PyramidPoolingDecoder",
    "SMPDecoder",
    "SPP",
]
