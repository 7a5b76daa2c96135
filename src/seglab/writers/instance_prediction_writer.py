"""Writes the instance predictions an evaluation scores, in a benchmark's format (``eval.py export.format=...``).

The instance counterpart of :class:`~seglab.writers.prediction_writer.PredictionWriter`. The predictions come from the module's
``validation_step`` / ``test_step`` outputs (``{"instances": [...]}``, see :mod:`seglab.tasks.instance`), so the
files hold exactly what the metrics saw: COCOeval on ``predictions.json`` reproduces the logged mask AP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L

from seglab.data.datasets import CityscapesDataset, COCOSegmentation
from seglab.data.datasets.cityscapes_labels import train_id_to_id_lut
from seglab.runtime.errors import UserError
from seglab.writers.instances import INSTANCE_EXPORT_FORMATS, coco_results, write_cityscapes_instances

# The dataset whose ids each format writes.
FORMAT_DATASETS = {"coco": COCOSegmentation, "cityscapes": CityscapesDataset}


class InstancePredictionWriter(L.Callback):
    """Writes the predictions of ``trainer.validate`` / ``trainer.test`` under ``out_dir`` in ``export_format``.

    Args:
        export_format: ``coco`` (``<out_dir>/predictions.json``, COCO results with the dataset's image and category
            ids; needs ``data=coco``) or ``cityscapes`` (the official instance format: ``<name>.txt`` + binary
            mask PNGs; needs ``data=cityscapes``), see :mod:`seglab.writers.instances`.
        out_dir: the output folder (created).
    """

    def __init__(self, export_format: str, out_dir: str | Path) -> None:
        if export_format not in INSTANCE_EXPORT_FORMATS:
            raise ValueError(f"unknown instance format {export_format!r}; expected one of {INSTANCE_EXPORT_FORMATS}")
        self.export_format = export_format
        self.out_dir = Path(out_dir)
        self.results: list[dict[str, Any]] = []
        self.written = 0

    def _start(self, trainer: L.Trainer, stage: str) -> None:
        dataset = trainer.datamodule.datasets[stage]
        needed = FORMAT_DATASETS[self.export_format]
        if not isinstance(dataset, needed):
            raise UserError(
                f"export.format={self.export_format} writes {needed.__name__} ids, but the {stage} split is a "
                f"{type(dataset).__name__}; use it with data={self.export_format}"
            )
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.results = []
        if self.export_format == "coco":
            self.image_ids = {Path(info["file_name"]).stem: image_id for image_id, info in dataset.coco.imgs.items()}
            self.image_sizes = {image_id: (info["height"], info["width"]) for image_id, info in dataset.coco.imgs.items()}
            self.class_to_category = dataset.class_to_category
        else:
            self.label_ids = train_id_to_id_lut()

    def _write(self, outputs: dict[str, Any], names: list[str]) -> None:
        for prediction, name in zip(outputs["instances"], names):
            if self.export_format == "coco":
                image_id = self.image_ids[name]
                if tuple(prediction["masks"].shape[-2:]) != self.image_sizes[image_id]:
                    raise UserError(
                        f"export.format=coco: {name} was predicted at {tuple(prediction['masks'].shape[-2:])}, not its "
                        f"annotated size {self.image_sizes[image_id]} (a batch pads images of different sizes, and "
                        "the padding would count in the scores); evaluate with data.val_batch_size=1"
                    )
                self.results += coco_results(prediction, image_id, self.class_to_category)
            else:
                write_cityscapes_instances(prediction, name, self.out_dir, self.label_ids)
            self.written += 1

    def _finish(self) -> None:
        if self.export_format == "coco":
            (self.out_dir / "predictions.json").write_text(json.dumps(self.results))

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(trainer, "val")

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start(trainer, "test")

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # noqa: ANN001
        self._write(outputs, batch["name"])

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:  # noqa: ANN001
        self._write(outputs, batch["name"])

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish()

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._finish()
