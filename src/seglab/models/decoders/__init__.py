"""Decoders: modules that turn the encoder's multi-stride features into one feature map for the classifier.

Every decoder takes ``encoder_channels`` (channels per stride level 1, 2, 4, 8, 16, 32, as smp encoders list
them) and ``output_stride`` as its first constructor arguments, exposes ``out_channels``, and maps the list of
encoder features to a single tensor.
"""

from seglab.models.decoders.aspp import ASPP
from seglab.models.decoders.deeplabv3 import DeepLabV3Decoder
from seglab.models.decoders.deeplabv3plus import DeepLabV3PlusDecoder

__all__ = ["ASPP", "DeepLabV3Decoder", "DeepLabV3PlusDecoder"]
