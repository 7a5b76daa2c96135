"""Atrous convolution widens the field of view at the same parameter count: theory and measurement."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from seglab.models import Segmentor, build_backbone
from seglab.models.complexity import count_flops, count_parameters
from seglab.models.decoders import DeepLabV3PlusDecoder, LargeFOVDecoder
from seglab.models.receptive_field import atrous_convolutions, centred_extent, effective_receptive_field, field_of_view


def atrous_conv(rate: int) -> nn.Conv2d:
    return nn.Conv2d(3, 4, 3, padding=rate, dilation=rate)


def test_rate_1_is_an_ordinary_3x3_convolution():
    torch.manual_seed(0)
    plain = nn.Conv2d(3, 4, 3, padding=1)
    atrous = atrous_conv(1)
    atrous.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 11, 13)
    assert torch.equal(atrous(x), plain(x))


def test_the_rate_changes_neither_parameters_nor_output_size():
    x = torch.randn(1, 3, 31, 31)
    assert {count_parameters(atrous_conv(r)) for r in (1, 2, 6, 12)} == {3 * 4 * 9 + 4}
    assert {atrous_conv(r)(x).shape for r in (1, 2, 6, 12)} == {(1, 4, 31, 31)}


@pytest.mark.parametrize("rate", [1, 2, 4, 8])
def test_a_3x3_kernel_at_rate_r_sees_2r_plus_1_pixels_measured_and_in_theory(rate):
    conv = atrous_conv(rate)
    nn.init.ones_(conv.weight)  # every tap counts alike, so the taps hold all of the gradient
    erf = effective_receptive_field(conv, (41, 41), mass=0.99)
    assert field_of_view(3, rate) == 2 * rate + 1 == erf.extent
    taps = erf.gradient.nonzero()
    assert (taps.amax(0) - taps.amin(0)).tolist() == [2 * rate, 2 * rate]


def test_measured_field_of_view_of_a_network_grows_with_the_rate():
    extents, counts = [], []
    for rate in (1, 4):
        torch.manual_seed(0)
        head = functools.partial(LargeFOVDecoder, channels=32, rate=rate)
        net = Segmentor(build_backbone("resnet18", None, 8), head, num_classes=3)
        extents.append(effective_receptive_field(net, (97, 97)).extent)
        counts.append(count_parameters(net))
    assert counts[0] == counts[1]
    assert extents[1] > extents[0]


def test_centred_extent_finds_the_smallest_square_holding_the_mass():
    weights = torch.zeros(9, 9)
    weights[4, 4], weights[4, 6] = 1.0, 3.0  # a quarter at the centre, the rest two pixels away
    assert centred_extent(weights, (4, 4), mass=0.25) == 1
    assert centred_extent(weights, (4, 4), mass=0.5) == 5


def test_decoder_convolutions_are_listed_with_the_stride_they_run_at():
    net = Segmentor(build_backbone("resnet18", None, 16), DeepLabV3PlusDecoder, num_classes=3)
    rows = {row.name: row for row in atrous_convolutions(net, (64, 64))}
    aspp = rows["aspp.branches.1.0"]
    assert (aspp.dilation, aspp.stride, aspp.field_of_view, aspp.field_of_view_input) == (6, 16, 13, 193)
    assert (rows["fuse.0.0"].stride, rows["fuse.0.0"].field_of_view_input) == (4, 9)


def test_flops_follow_the_input_area():
    net = Segmentor(build_backbone("resnet18", None, 16), DeepLabV3PlusDecoder, num_classes=3)
    small, large = count_flops(net, (64, 64)), count_flops(net, (128, 128))
    assert small > 0 and large == pytest.approx(4 * small, rel=0.02)
    assert next(net.parameters()).device.type == "cpu"  # counted on a meta copy
