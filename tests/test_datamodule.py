"""The DataModule: seeded workers draw reproducible, distinct augmentations; padded batches; instance options; splits
smaller than a batch."""

from __future__ import annotations

import functools
import types

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from seglab.data import SegmentationDataModule
from seglab.data.datasets import SyntheticShapes
from seglab.data.transforms import RandomScaleCrop
from seglab.runtime.errors import UserError


class OneImage(Dataset):
    """The same image every time, plus numpy noise: any difference between samples comes from the random streams."""

    def __init__(self, split: str, transforms=None) -> None:
        self.transforms = transforms

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        image = torch.arange(3 * 32 * 32, dtype=torch.int64).reshape(3, 32, 32).remainder(251).to(torch.uint8)
        sample = {"image": tv_tensors.Image(image), "mask": tv_tensors.Mask(image[0] // 64)}
        sample = self.transforms(sample)
        sample["noise"] = torch.from_numpy(np.random.rand(2))  # numpy's global stream, as third-party code uses it
        sample["name"] = str(index)
        return sample


def _datamodule(**kwargs) -> SegmentationDataModule:
    options = dict(num_classes=4, class_names=list("abcd"), batch_size=2, num_workers=2, persistent_workers=False)
    return SegmentationDataModule(**{**options, **kwargs})


def _epoch(seed: int) -> list[dict]:
    torch.manual_seed(seed)
    transforms = v2.Compose([RandomScaleCrop([16, 16], (0.5, 2.0)), v2.RandomHorizontalFlip()])
    return list(_datamodule(dataset=OneImage, train_transforms=transforms).train_dataloader())


def test_seeded_workers_repeat_their_augmentations_and_differ_from_each_other():
    first, again, other = _epoch(0), _epoch(0), _epoch(1)
    for a, b in zip(first, again):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["noise"], b["noise"])
    assert not all(torch.equal(a["image"], b["image"]) for a, b in zip(first, other))
    images = torch.cat([batch["image"] for batch in first])
    noise = torch.cat([batch["noise"] for batch in first])
    assert len({tuple(x.flatten().tolist()) for x in images}) == len(images)  # no two draws alike, across workers
    assert len(set(noise[:, 0].tolist())) == len(noise)


def test_validation_batches_of_different_sizes_are_padded_with_ignore():
    def dataset(split, transforms):  # two synthetic images of different sizes, one sample each
        parts = [SyntheticShapes(split, transforms, lengths={split: 1}, image_size=size) for size in ((24, 32), (32, 20))]
        return torch.utils.data.ConcatDataset(parts)

    datamodule = _datamodule(dataset=dataset, num_classes=5, class_names=list("abcde"), val_batch_size=2, num_workers=0)
    batch = next(iter(datamodule.val_dataloader()))
    assert batch["image"].shape == (2, 3, 32, 32)
    assert (batch["mask"][0, 24:] == 255).all() and (batch["mask"][1, :, 20:] == 255).all()
    assert (batch["mask"][0, :24] != 255).all() and (batch["mask"][1, :, :20] != 255).all()


def test_instance_options():
    with pytest.raises(UserError, match="data.return_instances=true, but this dataset has no instance annotations"):
        _datamodule(dataset=OneImage, return_instances=True)
    dataset = functools.partial(SyntheticShapes, lengths={"train": 4, "val": 2}, return_instances=True)
    datamodule = _datamodule(
        dataset=dataset, num_classes=5, class_names=list("abcde"), thing_ids=[1, 2, 3, 4], return_instances=True, num_workers=0
    )
    batch = next(iter(datamodule.train_dataloader()))
    assert len(batch["instances"]) == 2 and all(t["labels"].min() >= 1 for t in batch["instances"] if len(t["labels"]))


class Shapes(Dataset):
    """``length`` tiny samples."""

    def __init__(self, split: str, transforms=None, length: int = 8) -> None:
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        return {"image": tv_tensors.Image(torch.zeros(3, 4, 4, dtype=torch.uint8)),
                "mask": tv_tensors.Mask(torch.zeros(4, 4, dtype=torch.uint8))}


@pytest.mark.parametrize(
    ("samples", "processes", "batches"),
    [(1, 1, [1]), (7, 1, [7]), (8, 1, [8]), (9, 1, [8]), (17, 1, [8, 8]), (12, 2, [6])],
    ids=["one", "fewer-than-a-batch", "one-batch", "one-more", "many", "fewer-per-process"],
)
def test_a_split_smaller_than_one_batch_trains_as_one_batch_and_larger_ones_drop_the_rest(
    samples, processes, batches, caplog
):
    datamodule = _datamodule(dataset=functools.partial(Shapes, length=samples), batch_size=8, num_workers=0)
    datamodule.trainer = types.SimpleNamespace(world_size=processes, global_rank=0)
    loader = datamodule.train_dataloader()
    datamodule.trainer = None  # iterate from the start of epoch 0
    assert [len(batch["image"]) for batch in loader] == batches
    warned = [r.getMessage() for r in caplog.records if "fewer than data.batch_size" in r.getMessage()]
    if samples // processes >= 8:
        assert warned == []
    else:
        shard = f" ({samples // processes} per process)" if processes > 1 else ""
        assert warned == [f"The train split has {samples} samples{shard}, fewer than data.batch_size=8: each step "
                          f"trains on all {samples // processes} of them (lower data.batch_size to train on smaller "
                          "batches)"]
