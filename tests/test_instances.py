"""Instance targets: one format, moved with the image by the transforms, padded with 0, batched per image."""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from seglab.data.collate import collate_samples
from seglab.data.datasets import SyntheticShapes
from seglab.data.instances import InstanceMasks, make_instances
from seglab.data.transforms import RandomCropWithIgnore, RandomScaleCrop


def check_format(sample: dict) -> None:
    """The documented format: same K everywhere, dtypes, tight boxes around non-empty masks."""
    instances = sample["instances"]
    masks, labels, boxes, iscrowd = (instances[k] for k in ("masks", "labels", "boxes", "iscrowd"))
    assert isinstance(masks, InstanceMasks) and masks.dtype == torch.uint8 and masks.shape[-2:] == sample["mask"].shape
    assert labels.dtype == torch.int64 and iscrowd.dtype == torch.bool
    assert isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.format == tv_tensors.BoundingBoxFormat.XYXY
    assert len(masks) == len(labels) == len(boxes) == len(iscrowd)
    for mask, box in zip(masks, boxes):
        ys, xs = torch.nonzero(mask, as_tuple=True)
        assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_synthetic_instances_are_the_visible_shapes():
    dataset = SyntheticShapes("train", lengths={"train": 8}, num_objects=(3, 5), return_instances=True)
    for index in range(len(dataset)):
        sample = dataset[index]
        check_format(sample)
        masks, labels = sample["instances"]["masks"].bool(), sample["instances"]["labels"]
        _, semantic, id_map = dataset.generate(index)
        assert len(masks) == len(set(id_map[id_map > 0].tolist()))  # hidden shapes are not instances
        assert masks.sum(0).max() <= 1  # later shapes occlude earlier ones: no pixel in two instances
        assert torch.equal(masks.any(0), torch.from_numpy(semantic > 0))
        for mask, label in zip(masks, labels):
            assert (sample["mask"][mask] == label).all()
    assert "instances" not in SyntheticShapes("train", lengths={"train": 1})[0]  # semantic runs do not pay for them


def test_transforms_move_instances_with_the_mask_and_drop_the_ones_cropped_away():
    pipeline = v2.Compose([RandomScaleCrop([40, 40], (0.5, 2.0)), v2.RandomHorizontalFlip(), RandomCropWithIgnore([32, 32])])
    dataset = SyntheticShapes("train", lengths={"train": 16}, transforms=pipeline, return_instances=True)
    torch.manual_seed(0)
    counts = []
    for index in range(len(dataset)):
        sample = dataset[index]
        check_format(sample)
        for mask, label in zip(sample["instances"]["masks"].bool(), sample["instances"]["labels"]):
            assert mask.any() and (sample["mask"][mask] == label).all()
        counts.append(len(sample["instances"]["labels"]))
    assert min(counts) < max(counts)


def _sample(height: int, width: int, num_instances: int) -> dict:
    masks = torch.zeros(num_instances, height, width, dtype=torch.bool)
    for k in range(num_instances):
        masks[k, k : k + 2, k : k + 3] = True
    return {
        "image": tv_tensors.Image(torch.full((3, height, width), 9, dtype=torch.uint8)),
        "mask": tv_tensors.Mask(torch.ones(height, width, dtype=torch.uint8)),
        "instances": make_instances(masks, [1] * num_instances, [False] * num_instances),
        "name": f"{height}x{width}",
    }


def test_padding_fills_semantic_masks_with_ignore_and_instance_masks_with_zero():
    sample = _sample(10, 12, 2)
    for transform in (
        RandomCropWithIgnore([16, 20], ignore_index=255),
        RandomScaleCrop([16, 20], (1.0, 1.0), ignore_index=255),
        v2.RandomCrop([16, 20], pad_if_needed=True, fill={tv_tensors.Image: 0, tv_tensors.Mask: 255}),  # torchvision's own
    ):
        out = transform(sample)
        padded = out["mask"] == 255
        assert padded.sum() == 16 * 20 - 10 * 12
        assert isinstance(out["instances"]["masks"], InstanceMasks)
        assert out["instances"]["masks"][:, padded].eq(0).all() and out["instances"]["masks"].sum() == 2 * 6


def test_collate_pads_to_the_largest_sample_and_keeps_instances_per_image():
    batch = collate_samples([_sample(10, 12, 2), _sample(8, 16, 0), _sample(6, 6, 3)], ignore_index=255)
    assert batch["image"].shape == (3, 3, 10, 16) and batch["mask"].shape == (3, 10, 16)
    assert batch["name"] == ["10x12", "8x16", "6x6"]
    assert (batch["mask"][0, :, 12:] == 255).all() and (batch["mask"][1, 8:] == 255).all()
    assert (batch["image"][2, :, 6:] == 0).all() and (batch["image"][2, :, :6, :6] == 9).all()
    assert [len(target["labels"]) for target in batch["instances"]] == [2, 0, 3]
    for target, source in zip(batch["instances"], (_sample(10, 12, 2), _sample(8, 16, 0), _sample(6, 6, 3))):
        assert target["masks"].shape[-2:] == (10, 16) and target["boxes"].canvas_size == (10, 16)
        assert torch.equal(target["boxes"], source["instances"]["boxes"])  # padding at the bottom/right moves nothing
        assert target["masks"].sum() == source["instances"]["masks"].sum()


def test_collate_stacks_equal_sizes_unchanged():
    samples = [_sample(8, 8, 1), _sample(8, 8, 1)]
    batch = collate_samples(samples)
    assert torch.equal(batch["image"], torch.stack([s["image"] for s in samples]))
    assert type(batch["image"]) is torch.Tensor and type(batch["mask"]) is torch.Tensor
