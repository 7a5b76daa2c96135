"""Joint transforms keep image and mask aligned; crops pad masks with the ignore index; schedule values."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from torchvision import tv_tensors
from torchvision.transforms import v2

from seglab.config.compose import compose_config
from seglab.data.transforms import Normalize, RandomCropWithIgnore, RandomScale, RandomScaleCrop
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


ROW_STEP, COL_STEP = 5, 6  # grey levels per row and per column in the coordinate image


def _coordinate_sample(height: int = 24, width: int = 32) -> dict:
    """An image whose channels encode each pixel's row and column, and a mask derived from the image."""
    rows = torch.arange(height, dtype=torch.uint8)[:, None].expand(height, width)
    cols = torch.arange(width, dtype=torch.uint8)[None, :].expand(height, width)
    image = tv_tensors.Image(torch.stack([rows * ROW_STEP, cols * COL_STEP, torch.zeros_like(rows)]))
    return {"image": image, "mask": tv_tensors.Mask(_cell_class(rows, cols))}


def _cell_class(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    return ((rows // 4) * 10 + cols // 4).to(torch.uint8)  # a class per 4x4 cell


def _aligned_share(out: dict) -> float:
    """Share of labelled pixels whose mask class is the class of the source pixel the image says they come from
    (within one source pixel: resampling blends neighbouring rows and columns of the image)."""
    rows = (out["image"][0].long() + ROW_STEP // 2) // ROW_STEP
    cols = (out["image"][1].long() + COL_STEP // 2) // COL_STEP
    mask, inside = out["mask"], out["mask"] != 255
    near = [_cell_class((rows + dr).clamp(min=0), (cols + dc).clamp(min=0)) == mask for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
    return torch.stack(near).any(dim=0)[inside].float().mean().item()


def test_scale_crop_equals_scaling_then_cropping():
    # At scale 2 the crop must be a window of the mask upscaled 2x by nearest neighbour: every 2x2 output block is one
    # source pixel, the source window is contiguous, and the image moved with it.
    torch.manual_seed(0)
    sample = _coordinate_sample()
    for _ in range(5):
        out = RandomScaleCrop([16, 20], scale_range=(2.0, 2.0))(sample)
        mask, image = out["mask"], out["image"]
        assert mask.shape == (16, 20) and image.shape == (3, 16, 20)
        assert torch.equal(mask, mask[::2, ::2].repeat_interleave(2, 0).repeat_interleave(2, 1))
        top, left = int(image[0, 0, 0]) // ROW_STEP, int(image[1, 0, 0]) // COL_STEP  # the corner's source pixel
        assert torch.equal(mask[::2, ::2], sample["mask"][top : top + 8, left : left + 10])


def test_scale_crop_keeps_image_and_mask_aligned_and_pads_small_scales():
    torch.manual_seed(0)
    sample = _coordinate_sample()
    for _ in range(10):
        out = RandomScaleCrop([20, 28], scale_range=(0.5, 1.5), ignore_index=255)(sample)
        assert _aligned_share(out) > 0.98
        assert set(out["mask"].unique().tolist()) <= set(sample["mask"].unique().tolist()) | {255}
    small = RandomScaleCrop([20, 28], scale_range=(0.5, 0.5))(sample)  # 12x16 image in a 20x28 crop
    assert (small["mask"][12:] == 255).all() and (small["mask"][:, 16:] == 255).all()
    assert (small["mask"][:12, :16] != 255).all() and (small["image"][:, 12:] == 0).all()


def test_cat_max_ratio_rejects_crops_dominated_by_one_class():
    mask = torch.zeros(64, 64, dtype=torch.uint8)
    mask[:, 48:] = 1  # class 1 is a strip on the right: few random 16x16 windows show both classes in balance
    sample = {"image": tv_tensors.Image(torch.zeros(3, 64, 64, dtype=torch.uint8)), "mask": tv_tensors.Mask(mask)}

    def balanced_share(transform) -> float:
        shares = [transform(sample)["mask"].float().mean().item() for _ in range(200)]
        return sum(0.25 < share < 0.75 for share in shares) / len(shares)

    torch.manual_seed(0)
    assert balanced_share(RandomCropWithIgnore([16, 16])) < 0.35
    assert balanced_share(RandomCropWithIgnore([16, 16], cat_max_ratio=0.75)) > 0.7
    assert balanced_share(RandomScaleCrop([16, 16], (1.0, 1.0))) < 0.35
    assert balanced_share(RandomScaleCrop([16, 16], (1.0, 1.0), cat_max_ratio=0.75)) > 0.7


@pytest.mark.parametrize("option", ["cityscapes", "voc"])
def test_configured_geometric_transforms_keep_alignment_and_labels(option):
    # The geometric part of each configured training pipeline (resize, crop, flip) on an image the mask derives from.
    cfg = compose_config("train", [f"data={option}", "data.crop_size=[24,32]"])
    geometric = v2.Compose([t for t in instantiate(cfg.data.train_transforms).transforms if not isinstance(t, (v2.ColorJitter, Normalize))])
    torch.manual_seed(0)
    sample = _coordinate_sample(48, 40)
    for _ in range(5):
        out = geometric(sample)
        assert out["mask"].shape == (24, 32)
        assert set(out["mask"].unique().tolist()) <= set(sample["mask"].unique().tolist()) | {255}  # nearest only
        assert _aligned_share(out) > 0.98
