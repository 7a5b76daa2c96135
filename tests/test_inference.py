"""Inference modes: slide agrees with whole inference where padding semantics allow it, TTA averages views."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seglab.config.builders import build_datamodule, build_model
from seglab.inference import slide_inference, tta_inference, whole_inference
from seglab.runtime.errors import UserError

from tests.helpers import make_cfg

CROP = (16, 24)


def pointwise_net() -> nn.Module:
    """Fully convolutional with 1x1 kernels: each output pixel depends on its own input pixel only."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 4, 1)).eval()


def conv3x3_net() -> nn.Module:
    """One 3x3 convolution with zero padding: padding the input with zeros changes nothing inside the image."""
    torch.manual_seed(0)
    return nn.Conv2d(3, 4, 3, padding=1).eval()


@pytest.mark.parametrize("size", [(10, 13), CROP, (37, 53)], ids=["smaller", "equal", "larger"])
def test_slide_equals_whole_for_a_pointwise_network(size):
    net = pointwise_net()
    images = torch.randn(2, 3, *size)
    with torch.no_grad():
        slid = slide_inference(net, images, CROP, stride=(10, 15))
        whole = whole_inference(net, images)
    assert slid.shape == whole.shape == (2, 4, *size)
    # Overlaps averaged (not summed), every pixel covered, the padding cropped off: no seams anywhere.
    torch.testing.assert_close(slid, whole, rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [(10, 13), CROP], ids=["smaller", "equal"])
def test_slide_equals_whole_for_a_3x3_conv_when_one_window_covers_the_image(size):
    net = conv3x3_net()
    images = torch.randn(1, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(slide_inference(net, images, CROP), whole_inference(net, images), rtol=0, atol=1e-6)


def test_slide_on_a_larger_image_differs_from_whole_only_along_inner_window_edges():
    # A 3x3 conv sees zero padding at a window's inner border instead of the neighbouring pixels: only pixels
    # on such a border (averaged with a window where they are inside) can differ, and by less than the
    # border effect itself. Windows of 16 rows start at 0 and 4 (stride 10, last window flush): rows 15 and 4.
    net = conv3x3_net()
    images = torch.randn(1, 3, 20, CROP[1])
    with torch.no_grad():
        difference = (slide_inference(net, images, CROP, stride=(10, 24)) - net(images)).abs().amax(dim=(0, 1, 3))
    assert set(torch.nonzero(difference > 1e-6).flatten().tolist()) == {4, 15}


def test_a_stride_larger_than_the_crop_is_refused():
    with pytest.raises(UserError, match="inference.stride"):
        slide_inference(pointwise_net(), torch.zeros(1, 3, 32, 32), CROP, stride=(20, 10))


def test_flip_tta_of_a_mirror_symmetric_image_gives_mirror_symmetric_logits():
    net = conv3x3_net()  # its kernel is not symmetric: the network is not flip-equivariant
    half = torch.randn(1, 3, 12, 8)
    images = torch.cat([half, half.flip(-1)], dim=-1)  # equal to its own mirror image
    with torch.no_grad():
        plain = whole_inference(net, images)
        tta = tta_inference(net, images, scales=[1.0], flip=True)
    assert not torch.allclose(plain, plain.flip(-1), atol=1e-3)
    torch.testing.assert_close(tta, tta.flip(-1))
    torch.testing.assert_close(tta, (plain + plain.flip(-1)) / 2)


def test_flip_tta_mirrors_the_flipped_views_logits_back():
    net = conv3x3_net()
    images = torch.randn(1, 3, 12, 16)
    with torch.no_grad():
        expected = (net(images) + net(images.flip(-1)).flip(-1)) / 2
        torch.testing.assert_close(tta_inference(net, images, scales=[1.0], flip=True), expected)


def test_multi_scale_tta_averages_at_the_original_size():
    net = pointwise_net()
    images = torch.randn(2, 3, 20, 30)
    with torch.no_grad():
        torch.testing.assert_close(tta_inference(net, images, scales=[1.0, 1.0]), net(images))  # a mean, not a sum
        logits = tta_inference(net, images, scales=[0.5, 1.0, 1.75], flip=True)
        uniform = torch.full((1, 3, 20, 30), 0.3)  # every scale and mirror sees the same colour
        torch.testing.assert_close(tta_inference(net, uniform, scales=[0.5, 1.75], flip=True), net(uniform))
    assert logits.shape == (2, 4, 20, 30)


def test_tta_can_slide_over_each_view():
    net = pointwise_net()
    images = torch.randn(1, 3, 20, 30)
    inner = lambda n, x: slide_inference(n, x, CROP)  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(tta_inference(net, images, scales=[1.0], flip=True, inner=inner), net(images))


def test_validation_during_training_uses_the_configured_mode(tmp_path):
    cfg = make_cfg(tmp_path, "inference=slide", "inference.stride=[32,32]", "data.crop_size=[48,48]", "model/backbone=resnet18")
    module = build_model(cfg, build_datamodule(cfg))
    assert module.inference.func is slide_inference
    assert module.inference.keywords == {"crop_size": [48, 48], "stride": [32, 32]}  # the crop follows the data
    cfg = make_cfg(tmp_path, "inference=tta", "model/backbone=resnet18")
    assert build_model(cfg, build_datamodule(cfg)).inference.keywords["scales"] == [0.75, 1.0, 1.25, 1.5]
