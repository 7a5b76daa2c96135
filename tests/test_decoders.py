"""The decoder families as parts: SPP, ASPP (v2 and v3), LargeFOV, pyramid pooling, FCN, smp architectures,
and how the segmentor joins them (classifier, logit-producing decoders, auxiliary head)."""

from __future__ import annotations

import functools

import pytest
import torch

from seglab.models import Segmentor, build_backbone
from seglab.models.decoders import (
    ASPP,
    SPP,
    ASPPV2Decoder,
    FCNDecoder,
    LargeFOVDecoder,
    PyramidPoolingDecoder,
    SMPDecoder,
)
from seglab.runtime.errors import UserError

RESNET18_CHANNELS = [3, 64, 64, 128, 256, 512]


def features_for(channels, size=64, output_stride=16):
    """Fake encoder features at strides 1, 2, 4, 8, 16, 32 (capped at the output stride)."""
    strides = [min(s, output_stride) for s in (1, 2, 4, 8, 16, 32)]
    return [torch.randn(2, c, size // s, size // s) for c, s in zip(channels, strides)]


@pytest.mark.parametrize("size", [(64, 64), (13, 29), (3, 3), (2, 5), (1, 1)])
def test_spp_gives_21_times_channels_whatever_the_input_size(size):
    assert SPP()(torch.randn(2, 256, *size)).shape == (2, 21 * 256)


def test_spp_levels_are_max_pooled_bins():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    vector = SPP(levels=(2, 1))(x)
    assert vector.tolist() == [[5.0, 7.0, 13.0, 15.0, 15.0]]  # the 2x2 bins' maxima, then the global maximum
    assert SPP(levels=(1,), pool="avg")(x).item() == pytest.approx(7.5)


def test_spp_refuses_an_unknown_pool():
    with pytest.raises(UserError, match="'max'"):
        SPP(pool="median")


def test_aspp_public_signature_keeps_spatial_size():
    aspp = ASPP(64, out_channels=32, rates=(6, 12, 18), image_pooling=True, separable=False)
    assert aspp(torch.randn(2, 64, 17, 23)).shape == (2, 32, 17, 23)
    assert len(aspp.branches) == 5  # 1x1, three atrous 3x3, image pooling


def test_batchnorm_of_a_single_value_per_channel_uses_the_running_statistics():
    from seglab.models.layers import BatchNorm2d

    bn = BatchNorm2d(3).train()
    bn.running_mean.fill_(1.0)
    out = bn(torch.full((1, 3, 1, 1), 3.0))  # plain BatchNorm raises here
    assert torch.allclose(out, torch.full((1, 3, 1, 1), 2.0), atol=1e-4)  # (3 - 1) / sqrt(1 + eps)
    assert bn.running_mean.tolist() == [1.0, 1.0, 1.0]
    bn(torch.randn(2, 3, 1, 1))  # two values per channel: ordinary batch statistics
    assert bn.running_mean.tolist() != [1.0, 1.0, 1.0]


def test_aspp_v2_sums_the_class_logits_of_its_branches():
    decoder = ASPPV2Decoder(RESNET18_CHANNELS, 8, num_classes=7)
    assert [branch.dilation[0] for branch in decoder.branches] == [6, 12, 18, 24]
    features = features_for(RESNET18_CHANNELS, output_stride=8)
    expected = sum(branch(features[-1]) for branch in decoder.branches)
    assert torch.allclose(decoder(features), expected, atol=1e-5)
    assert decoder(features).shape == (2, 7, 8, 8)


def test_largefov_is_a_rate_12_atrous_conv_with_1024_channels():
    decoder = LargeFOVDecoder(RESNET18_CHANNELS)
    conv = decoder.fc6[0][0]
    assert (conv.kernel_size, conv.dilation, conv.out_channels) == ((3, 3), (12, 12), 1024)
    assert decoder(features_for(RESNET18_CHANNELS, output_stride=8)).shape == (2, 1024, 8, 8)


@pytest.mark.parametrize(("levels", "pool"), [((1, 2, 3, 6), "avg"), ((4, 2, 1), "max")])
def test_pyramid_pooling_fuses_levels_and_trains_at_batch_size_one(levels, pool):
    decoder = PyramidPoolingDecoder(RESNET18_CHANNELS, levels=levels, pool=pool, out_channels=64).train()
    features = [f[:1] for f in features_for(RESNET18_CHANNELS, size=96, output_stride=8)]
    out = decoder(features)
    out.mean().backward()
    assert out.shape == (1, 64, 12, 12)
    assert decoder.fuse[0].in_channels == 512 + len(levels) * (512 // len(levels))


def test_fcn_head_reads_the_level_it_is_given():
    assert FCNDecoder(RESNET18_CHANNELS).out_channels == 128
    aux = FCNDecoder(RESNET18_CHANNELS, level=4)
    assert aux(features_for(RESNET18_CHANNELS)).shape == (2, 64, 4, 4)


def test_segmentor_adds_no_classifier_to_a_decoder_that_outputs_classes():
    net = Segmentor(build_backbone("resnet18", None, 8), ASPPV2Decoder, num_classes=3)
    assert isinstance(net.classifier, torch.nn.Identity)
    assert net.decoder.branches[0].out_channels == 3
    assert net(torch.randn(1, 3, 40, 40)).shape == (1, 3, 40, 40)


def test_auxiliary_head_reads_the_stride_16_stage_and_leaves_inference_alone():
    torch.manual_seed(0)
    plain = Segmentor(build_backbone("resnet18", None, 8), FCNDecoder, num_classes=4).eval()
    torch.manual_seed(0)
    aux = Segmentor(build_backbone("resnet18", None, 8), FCNDecoder, num_classes=4, aux_head=True).eval()
    images = torch.randn(2, 3, 48, 48)
    logits, aux_logits = aux.forward_with_aux(images)
    assert torch.equal(aux(images), logits) and torch.allclose(plain(images), logits)
    assert aux_logits.shape == (2, 4, 48, 48)
    assert aux.aux_head[0].conv[0].in_channels == 256  # ResNet-18's layer3
    assert plain.forward_with_aux(images)[1] is None


def test_smp_architecture_runs_on_a_seglab_backbone():
    decoder = functools.partial(SMPDecoder, arch="FPN", encoder_name="resnet18")
    net = Segmentor(build_backbone("resnet18", None, 32), decoder, num_classes=3)
    logits = net(torch.randn(2, 3, 64, 64))
    logits.mean().backward()
    assert logits.shape == (2, 3, 64, 64) and net.decoder.arch == "FPN"


def test_smp_architecture_without_atrous_option_needs_output_stride_32():
    with pytest.raises(UserError, match="output_stride=32"):
        SMPDecoder(RESNET18_CHANNELS, 16, num_classes=3, arch="Unet", encoder_name="resnet18")
    with pytest.raises(UserError, match="Unet"):
        SMPDecoder(RESNET18_CHANNELS, 32, num_classes=3, arch="Unnet", encoder_name="resnet18")
    with pytest.raises(UserError, match="model.backbone.name"):
        SMPDecoder(RESNET18_CHANNELS, 32, num_classes=3, arch="Unet", encoder_name="resnet50")
