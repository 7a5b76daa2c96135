"""A training loader that a run killed mid-epoch resumes exactly where it was.

Lightning saves the ``state_dict()`` of a stateful training loader in every checkpoint and, when it restarts in
the middle of an epoch, gives it back through ``load_state_dict()`` before iterating again; a plain
``DataLoader`` would start the epoch over with a fresh shuffle. Here:

- :class:`ResumableSampler` shuffles with a generator seeded from (seed, epoch) (a ``DistributedSampler``, so
  Lightning keeps it under DDP and each process takes its own shard) and can start an epoch after the samples
  already trained on;
- it hands each index over with a seed derived from (seed, epoch, index), and :class:`SeededSamples` draws that
  sample's random augmentation from it, so augmentations do not depend on which process or worker loads the
  sample, nor on what drew from the global generators before;
- :class:`ResumableDataLoader` reports the loop's position (the batches the training loop has processed, not the
  batches fetched, which run ahead when Lightning saves in the middle of a step) and restores it (through the
  DataModule's state, see :meth:`seglab.data.SegmentationDataModule.state_dict`).
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from lightning.pytorch.utilities.seed import isolate_rng
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from seglab.runtime.seeding import derive_seed, seed_generators


class ResumableSampler(DistributedSampler):
    """Shuffled indices of this process's shard, each with its augmentation seed; ``start`` skips the first ones.

    Args:
        dataset: the dataset to sample (only its length is used).
        seed: the run's seed; the order of epoch ``e`` depends only on (seed, e).
        num_replicas, rank: the number of processes and this one's rank (1 and 0 without DDP).
    """

    def __init__(self, dataset: Dataset, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed % 2**62)
        self.start = 0

    def __iter__(self) -> Iterator[tuple[int, int]]:
        indices = list(super().__iter__())[self.start :]
        return iter([(index, derive_seed(self.seed, self.epoch, index)) for index in indices])


class SeededSamples(Dataset):
    """``dataset`` indexed by ``(index, seed)``: the sample's random transforms draw from generators seeded with
    ``seed``; the global generators are left as they were. A plain index loads the sample unseeded."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: int | tuple[int, int]) -> Any:
        if not isinstance(item, tuple):
            return self.dataset[item]
        index, seed = item
        with isolate_rng(include_cuda=False):
            seed_generators(seed)
            return self.dataset[index]


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over :class:`SeededSamples` with a :class:`ResumableSampler`, whose position Lightning
    saves in checkpoints.

    Args:
        progress: returns the training loop's (epoch, batches processed in that epoch); without it (no trainer)
            the loader starts every iteration at the beginning of epoch 0's order unless ``set_epoch`` is called.
        *args, **kwargs: ``DataLoader``'s.
    """

    def __init__(self, *args: Any, progress: Callable[[], tuple[int, int]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.progress = progress
        self.resume_at: dict[str, int] = {}

    @property
    def resumable(self) -> bool:
        # Lightning swaps the sampler for a sequential one with trainer.overfit_batches: nothing to resume then.
        return isinstance(self.sampler, ResumableSampler) and self.progress is not None

    def state_dict(self) -> dict[str, int]:
        if not self.resumable:
            return {}
        epoch, batches = self.progress()
        return {"seed": self.sampler.seed, "epoch": epoch, "batches": batches}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Start the next iteration where ``state`` was saved (the loop's counters may not be restored yet)."""
        if state and self.resumable:
            self.sampler.seed = state["seed"]  # an unseeded run keeps the order it started with
            self.resume_at = state

    def __iter__(self) -> Iterator[Any]:
        if self.resumable:
            # Worker processes take their first indices when the iterator is made, which Lightning may do before
            # it restores its loop or sets the sampler's epoch: take the position from the checkpoint or the loop.
            if self.resume_at:
                epoch, start = self.resume_at["epoch"], self.resume_at["batches"] * self.batch_size
                self.resume_at = {}
            else:
                epoch, start = self.progress()[0], 0
            self.sampler.set_epoch(epoch)
            self.sampler.start = start
        return super().__iter__()
