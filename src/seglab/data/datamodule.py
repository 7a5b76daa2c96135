"""One LightningDataModule for every dataset.

The dataset class comes from the data config as a partial (``_partial_: true``); the DataModule calls it once
per split with ``split=`` and ``transforms=`` (``train+train_extra`` concatenates two splits). Batches come from
:func:`seglab.data.collate.collate_samples`. The training loader (:mod:`seglab.data.resumable`) shuffles with the
seed torch had when the DataModule was made (the run's ``seed``) and seeds each sample's augmentation from (seed,
epoch, index), so a seeded run draws the same batches again, whatever the number of workers, and a run resumed in
the middle of an epoch goes on with the batches the interrupted run would have drawn.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Mapping, Sequence

import lightning as L
import torch
from lightning.fabric.utilities.seed import pl_worker_init_function
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from seglab.data.collate import collate_samples
from seglab.data.labels import check_ignore_index
from seglab.data.resumable import ResumableDataLoader, ResumableSampler, SeededSamples
from seglab.runtime.distributed import evaluation_sampler
from seglab.runtime.errors import UserError
from seglab.viz.palette import default_palette

log = logging.getLogger(__name__)

class SegmentationDataModule(L.LightningDataModule):
    """Datasets and loaders for training, validation and test splits.

    Args:
        dataset: called as ``dataset(split=..., transforms=...)`` to build each split.
        num_classes: number of classes the labels use (0 .. num_classes - 1, plus ``ignore_index``).
        class_names: one name per class, used in metric names (``val/IoU/<name>``).
        ignore_index: label value of pixels that count in neither loss nor metrics.
        batch_size: training batch size per device.
        val_batch_size: validation/test batch size per device (defaults to ``batch_size``); images of different
            sizes are padded to the largest in the batch (masks with ``ignore_index``), so the configs of datasets
            with images of many sizes use 1 to score each image at its own resolution without padding.
        num_workers: loader worker processes per device.
        pin_memory: page-locked batches for faster host-to-GPU copies (default: when CUDA is available).
        persistent_workers: keep the workers alive between epochs (when ``num_workers`` > 0).
        train_transforms, val_transforms: joint image/mask transforms (see :mod:`seglab.data.transforms`).
        train_split, val_split, test_split: split names passed to ``dataset``; ``test_split=None`` means none.
        crop_size: the training crop [h, w] (the transforms read it; recorded for inference defaults).
        palette: one RGB colour per class for colour masks and overlays (default: the PASCAL VOC colour map).
        backbone_weights: the backbone weights that suit this dataset (``imagenet`` for natural images, ``None``
            for synthetic data); the model/backbone configs read it.
        root: the dataset root, for messages (the dataset partial receives its own copy).
        thing_ids: the class ids that have instances (instance targets' ``labels`` take these values).
        return_instances: the dataset adds instance targets (:mod:`seglab.data.instances`); the config passes it
            to the dataset partial, and it needs ``thing_ids``.
        strict_labels: label values that are neither a class nor ``ignore_index`` are an error (``False``: they
            are ignored with one warning); the config passes it to the dataset partial.
        eval_dataset_options: keyword arguments the dataset also gets for the validation and test splits (the
            Cityscapes config asks for the instance id maps its official scores need there).
        cityscapes_scores: the models also report the official Cityscapes scores (iIoU, category scores,
            Cityscapes instance AP); the model presets read this key.
    """

    def __init__(
        self,
        dataset: Callable[..., Dataset],
        num_classes: int,
        class_names: Sequence[str],
        ignore_index: int = 255,
        batch_size: int = 8,
        val_batch_size: int | None = None,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        train_transforms: Callable | None = None,
        val_transforms: Callable | None = None,
        train_split: str = "train",
        val_split: str = "val",
        test_split: str | None = None,
        crop_size: Sequence[int] | None = None,
        palette: Sequence[Sequence[int]] | None = None,
        backbone_weights: str | None = None,
        root: str | None = None,
        thing_ids: Sequence[int] | None = None,
        return_instances: bool = False,
        strict_labels: bool = True,
        eval_dataset_options: Mapping[str, Any] | None = None,
        cityscapes_scores: bool = False,
    ) -> None:
        super().__init__()
        if len(class_names) != num_classes:
            raise UserError(f"data.class_names lists {len(class_names)} names but data.num_classes={num_classes}")
        check_ignore_index("data.ignore_index", ignore_index, class_names)
        if return_instances and not thing_ids:
            raise UserError("data.return_instances=true, but this dataset has no instance annotations (data.thing_ids)")
        self.dataset = dataset
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        self.batch_size = batch_size
        self.val_batch_size = val_batch_size or batch_size
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory is None else pin_memory
        self.persistent_workers = persistent_workers and num_workers > 0
        self.train_transforms = train_transforms
        self.val_transforms = val_transforms
        if palette is not None and len(palette) < num_classes:
            raise UserError(f"data.palette has {len(palette)} colours for {num_classes} classes; give one per class")
        self.palette = [tuple(colour) for colour in palette] if palette is not None else default_palette(num_classes)
        self.splits = {"train": train_split, "val": val_split, "test": test_split}
        self.crop_size = list(crop_size) if crop_size is not None else None
        self.backbone_weights = backbone_weights
        self.root = root
        self.thing_ids = list(thing_ids or [])
        self.return_instances = return_instances
        self.strict_labels = strict_labels
        self.eval_dataset_options = dict(eval_dataset_options or {})
        self.cityscapes_scores = cityscapes_scores
        self.datasets: dict[str, Dataset] = {}
        self.shuffle_seed = torch.initial_seed()  # the run's seed once seed_everything ran; random otherwise
        self._train_loader: ResumableDataLoader | None = None
        self._train_position: dict[str, int] = {}  # where a resumed run's training loader starts

    def _build(self, stage: str) -> Dataset:
        if stage not in self.datasets:
            split = self.splits[stage]
            if split is None:
                raise UserError(f"this dataset has no {stage} split configured (set data.{stage}_split)")
            transforms = self.train_transforms if stage == "train" else self.val_transforms
            options = {} if stage == "train" else self.eval_dataset_options
            parts = [self.dataset(split=part, transforms=transforms, **options) for part in split.split("+")]
            self.datasets[stage] = parts[0] if len(parts) == 1 else ConcatDataset(parts)
        return self.datasets[stage]

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ["train", "val"], "validate": ["val"], "test": ["test"], "predict": []}
        for name in wanted.get(stage, ["train", "val"]) if stage else ["train", "val"]:
            self._build(name)

    def _loader(
        self, stage: str, dataset: Dataset | None = None, loader: type[DataLoader] = DataLoader, **kwargs: Any
    ) -> DataLoader:
        return loader(
            self._build(stage) if dataset is None else dataset,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers,
            collate_fn=functools.partial(collate_samples, ignore_index=self.ignore_index),
            worker_init_fn=pl_worker_init_function,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        dataset = self._build("train")
        trainer = self.trainer
        shard = {"num_replicas": trainer.world_size, "rank": trainer.global_rank} if trainer is not None else {}
        sampler = ResumableSampler(dataset, self.shuffle_seed, **shard)
        self._train_loader = self._loader(
            "train", SeededSamples(dataset), ResumableDataLoader, progress=self._fit_progress, sampler=sampler,
            batch_size=self.batch_size, drop_last=self._drop_last(len(sampler)),
        )
        self._train_loader.load_state_dict(self._train_position)
        self._train_position = {}
        return self._train_loader

    def _drop_last(self, samples: int) -> bool:
        """Training drops the last incomplete batch (every step sees ``batch_size`` samples), unless the split is
        smaller than one batch: then it trains on the whole split as one batch instead of not at all."""
        if samples >= self.batch_size:
            return True
        if samples > 0:
            shard = f" ({samples} per process)" if self.trainer is not None and self.trainer.world_size > 1 else ""
            log.warning(
                "The %s split has %d samples%s, fewer than data.batch_size=%d: each step trains on all %d of them "
                "(lower data.batch_size to train on smaller batches)", self.splits["train"],
                len(self.datasets["train"]), shard, self.batch_size, samples,
            )
        return False

    def state_dict(self) -> dict[str, Any]:
        """The training loader's position, saved in checkpoints.

        Lightning restores a DataModule before the model's ``configure_optimizers``, which builds the training
        loader early (``trainer.estimated_stepping_batches``); the loader's own state would come too late then.
        """
        return {"train_loader": self._train_loader.state_dict()} if self._train_loader is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._train_position = state_dict.get("train_loader", {})

    def _fit_progress(self) -> tuple[int, int]:
        """Where the training loop goes on: the epoch and the batches of it already trained.

        Once the last training batch of an epoch has run (validation, the end-of-epoch hooks and their checkpoint
        come after it) that is the start of the next epoch, not "epoch e, all batches done": a run resumed from a
        checkpoint written there would otherwise start the next epoch after its last batch and skip it.
        """
        if self.trainer is None:
            return 0, 0
        epochs, batches = self.trainer.fit_loop.epoch_progress.current, self.trainer.fit_loop.epoch_loop.batch_progress
        if batches.is_last_batch:  # counted in `started` from its first batch on, in `processed` only at its end
            return epochs.started, 0
        return epochs.processed, batches.current.processed

    def val_dataloader(self) -> DataLoader:
        return self._evaluation_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._evaluation_loader("test")

    def _evaluation_loader(self, stage: str) -> DataLoader:
        """Under DDP each process scores its own shard and every sample is scored once (Lightning keeps a
        DistributedSampler it finds instead of padding the shards with repeated samples)."""
        sampler = evaluation_sampler(self._build(stage), self.trainer)
        return self._loader(stage, batch_size=self.val_batch_size, shuffle=False, sampler=sampler)
