"""Backbones at output stride 8/16/32, the ASPP and DeepLabV3(+) decoders, and the segmentor's output."""

from __future__ import annotations

import functools
import subprocess
import sys

import pytest
import torch

from seglab.models import Segmentor, build_backbone
from seglab.models.decoders import ASPP, DeepLabV3Decoder, DeepLabV3PlusDecoder
from seglab.runtime.errors import UserError


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_backbone_output_stride(name, output_stride):
    backbone = build_backbone(name, weights=None, output_stride=output_stride)
    features = backbone(torch.randn(1, 3, 64, 64))
    assert features[-1].shape[-1] == 64 // output_stride
    assert features[2].shape[-1] == 16  # stride-4 low-level features are never dilated
    assert [f.shape[1] for f in features] == list(backbone.out_channels)


def test_dilation_keeps_the_parameter_count():
    counts = {os: sum(p.numel() for p in build_backbone("resnet18", None, os).parameters()) for os in (8, 16, 32)}
    assert len(set(counts.values())) == 1


def test_unsupported_output_stride_is_refused_with_the_supported_ones():
    with pytest.raises(UserError, match=r"\[8, 16, 32\]"):
        build_backbone("resnet18", None, output_stride=4)


def test_backbone_that_cannot_dilate_is_refused_with_the_strides_it_supports():
    with pytest.raises(UserError, match=r"'xception' cannot reach model.backbone.output_stride=16.*\[32\]"):
        build_backbone("xception", None, output_stride=16)  # smp's Xception downsamples by pooling


def spatial_rates(stage) -> list[int]:
    return [m.dilation[0] for m in stage.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1]


@pytest.mark.parametrize(("output_stride", "layer3", "layer4"), [(8, [1, 2, 2, 2, 2, 2], [2, 4, 4]), (16, [1] * 6, [1, 2, 2])])
def test_dilated_stage_keeps_the_previous_rate_in_its_first_block(output_stride, layer3, layer4):
    backbone = build_backbone("resnet50", None, output_stride)
    assert (spatial_rates(backbone.layer3), spatial_rates(backbone.layer4)) == (layer3, layer4)


@pytest.mark.parametrize(("output_stride", "rates"), [(16, [2, 4, 8]), (8, [4, 8, 16]), (32, [1, 2, 4])])
def test_multi_grid_multiplies_the_last_stage_rate_per_block(output_stride, rates):
    plain = build_backbone("resnet50", None, output_stride)
    grid = build_backbone("resnet50", None, output_stride, multi_grid=[1, 2, 4])
    assert spatial_rates(grid.layer4) == rates
    assert sum(p.numel() for p in grid.parameters()) == sum(p.numel() for p in plain.parameters())
    assert grid(torch.randn(1, 3, 64, 64))[-1].shape[-1] == 64 // output_stride


def test_multi_grid_needs_one_rate_per_block():
    with pytest.raises(UserError, match="has 2 blocks"):
        build_backbone("resnet18", None, 16, multi_grid=[1, 2, 4])
    with pytest.raises(UserError, match="multi_grid=null"):
        build_backbone("tu-efficientnet_b0", None, 16, multi_grid=[1, 2, 4])


def test_unknown_backbone_name_is_refused():
    with pytest.raises(UserError, match="resnet7"):
        build_backbone("resnet7", None)


def test_missing_local_weights_file_is_refused(tmp_path):
    with pytest.raises(UserError, match="weights=null"):
        build_backbone("resnet18", str(tmp_path / "nope.pth"))


def test_local_weights_file_is_loaded(tmp_path):
    source = build_backbone("resnet18", None)
    path = tmp_path / "encoder.pth"
    torch.save(source.state_dict(), path)
    loaded = build_backbone("resnet18", str(path))
    assert torch.equal(loaded.conv1.weight, source.conv1.weight)


def test_offline_imagenet_weights_give_a_clear_way_out():
    code = (
        "from seglab.models import build_backbone\n"
        "from seglab.runtime.errors import UserError\n"
        "try:\n    build_backbone('resnet18', 'imagenet')\n"
        "except UserError as e:\n    print('USERERROR', e)\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": "/nonexistent-seglab-hf-home", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "USERERROR" in out.stdout, out.stderr
    assert "model.backbone.weights=null" in out.stdout


def test_aspp_keeps_the_spatial_size_and_rates_follow_output_stride():
    aspp = ASPP(32, 16, rates=(1, 2, 3))
    assert aspp(torch.randn(2, 32, 9, 13)).shape == (2, 16, 9, 13)
    decoder = DeepLabV3Decoder([3, 8, 8, 16, 32, 64], output_stride=8)
    assert decoder.aspp.rates == (12, 24, 36)
    assert DeepLabV3Decoder([3, 8, 8, 16, 32, 64], output_stride=16).aspp.rates == (6, 12, 18)


def test_aspp_image_pooling_trains_at_batch_size_one():
    aspp = ASPP(8, 4).train()
    out = aspp(torch.randn(1, 8, 5, 5))
    out.sum().backward()
    assert out.shape == (1, 4, 5, 5)


def test_separable_aspp_has_fewer_parameters():
    plain = sum(p.numel() for p in ASPP(64, 32).parameters())
    sep = sum(p.numel() for p in ASPP(64, 32, separable=True).parameters())
    assert sep < plain


@pytest.mark.parametrize("decoder_cls", [DeepLabV3Decoder, DeepLabV3PlusDecoder])
@pytest.mark.parametrize("output_stride", [8, 16])
def test_segmentor_returns_logits_at_input_size(decoder_cls, output_stride):
    net = Segmentor(build_backbone("resnet18", None, output_stride), functools.partial(decoder_cls), num_classes=4)
    logits = net(torch.randn(2, 3, 48, 80))
    assert logits.shape == (2, 4, 48, 80) and logits.dtype == torch.float32
    logits.mean().backward()
    assert net.backbone.conv1.weight.grad is not None


def test_deeplabv3plus_fuses_stride4_features_with_48_channels():
    decoder = DeepLabV3PlusDecoder([3, 64, 64, 128, 256, 512], output_stride=16)
    assert decoder.low_level[0].out_channels == 48
    features = [torch.randn(1, c, 64 // s, 64 // s) for c, s in zip([3, 64, 64, 128, 256, 512], [1, 2, 4, 8, 16, 16])]
    assert decoder(features).shape == (1, 256, 16, 16)
