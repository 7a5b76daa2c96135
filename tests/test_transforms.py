"""Joint transforms keep image and mask aligned; crops pad masks with the ignore index; schedule values."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from seglab.data.transforms import Normalize, RandomCropWithIgnore, RandomScale
from seglab.optim import PolyLR


def test_geometric_transforms_keep_image_and_mask_aligned():
    # The mask is a function of the image (a threshold of the red channel), so after any geometric transform it
    # must still equal that function of the transformed image, away from resampled borders.
    torch.manual_seed(0)
    red = torch.zeros(32, 48, dtype=torch.uint8)
    red[4:20, 10:30] = 200
    red[22:30, 2:8] = 200
    image = tv_tensors.Image(torch.stack([red, torch.zeros_like(red), torch.zeros_like(red)]))
    mask = tv_tensors.Mask((red > 100).to(torch.uint8))
    pipeline = v2.Compose([RandomScale((2.0, 2.0)), RandomCropWithIgnore([40, 56]), v2.RandomHorizontalFlip(1.0)])
    for _ in range(5):
        out = pipeline({"image": image, "mask": mask})
        derived = (out["image"][0] > 100).to(torch.uint8)
        inside = out["mask"] != 255
        assert (derived[inside] == out["mask"][inside]).float().mean() > 0.99


def test_crop_pads_small_inputs_with_ignore_and_zero():
    sample = {
        "image": tv_tensors.Image(torch.full((3, 10, 10), 7, dtype=torch.uint8)),
        "mask": tv_tensors.Mask(torch.ones(10, 10, dtype=torch.uint8)),
    }
    out = RandomCropWithIgnore([20, 30], ignore_index=255)(sample)
    assert out["mask"].shape == (20, 30) and out["image"].shape == (3, 20, 30)
    assert (out["mask"] == 255).sum() == 20 * 30 - 100
    assert (out["image"][0][out["mask"] == 255] == 0).all()


def test_scale_resizes_masks_with_nearest_neighbour():
    mask = tv_tensors.Mask(torch.randint(0, 5, (16, 16), dtype=torch.uint8))
    out = RandomScale((0.5, 2.0))({"image": tv_tensors.Image(torch.zeros(3, 16, 16, dtype=torch.uint8)), "mask": mask})
    assert set(out["mask"].unique().tolist()) <= set(range(5))


def test_normalize_touches_images_only():
    sample = {"image": tv_tensors.Image(torch.full((3, 2, 2), 255, dtype=torch.uint8)), "mask": tv_tensors.Mask(torch.ones(2, 2, dtype=torch.uint8))}
    out = Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))(sample)
    assert out["image"].dtype == torch.float32 and torch.allclose(out["image"], torch.ones(3, 2, 2))
    assert out["mask"].dtype == torch.uint8


def test_poly_schedule_with_warmup():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = PolyLR(optimizer, max_steps=10, power=1.0, warmup_steps=2, warmup_ratio=0.5)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.5)  # warm-up starts at warmup_ratio
    assert lrs[1] == pytest.approx(0.9 * 0.75)
    assert lrs[5] == pytest.approx(0.5)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)
