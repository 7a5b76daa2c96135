"""Instance segmentation as a LightningModule: what the model families share.

:class:`InstanceSegmentationModule` holds the metrics, the logging, the evaluation outputs and the optimizers;
the families (:class:`~seglab.tasks.PanopticDeepLabModule`, :class:`~seglab.tasks.MaskRCNNModule`) add their
network, its training losses and its predictions. Both log the same names, so runs of either compare on one
dashboard: ``<stage>/mAP``, ``<stage>/mAP_50``, ``<stage>/mAP_75``, ``<stage>/AP/<class>`` (COCO mask AP), and on
Cityscapes (``cityscapes_scores``) ``<stage>/AP_cityscapes``, ``<stage>/AP50_cityscapes`` (the official Cityscapes
instance AP, :mod:`seglab.metrics.cityscapes_instance`).

Predictions are one dict per image, at the image's resolution: ``masks`` (K, H, W) bool, ``labels`` (K,) class
ids (the semantic class space, as in the data's instance targets) and ``scores`` (K,). ``validation_step`` and
``test_step`` return ``{"instances": [one prediction per image]}`` (and, with a semantic branch,
``{"masks": {"prediction": semantic maps}}`` as semantic models do), so callbacks (exports, visuals) see exactly
what was scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import lightning as L
import torch
from torch import nn
from torchmetrics import Metric

from seglab.metrics.cityscapes_inputs import require_cityscapes_classes, require_instance_ids
from seglab.metrics.cityscapes_instance import CityscapesInstanceAP
from seglab.metrics.instance import MaskAveragePrecision
from seglab.optim.setup import learning_rates, optimizers_with_backbone_group
from seglab.runtime.errors import UserError
from seglab.writers.instances import INSTANCE_EXPORT_FORMATS


def check_thing_ids(thing_ids: Sequence[int] | None, num_classes: int) -> list[int]:
    """``thing_ids`` as ints; missing, empty or out of range is a :class:`UserError`."""
    if not thing_ids:
        raise UserError(
            "data.thing_ids is not set: this dataset has no instance annotations; instance models train on "
            "data=synthetic, data=cityscapes or data=coco (or a data config with thing_ids and instance targets)"
        )
    thing_ids = [int(i) for i in thing_ids]
    bad = [i for i in thing_ids if not 0 <= i < num_classes]
    if bad:
        raise UserError(f"data.thing_ids holds {bad}, which are not class ids 0..{num_classes - 1}")
    return thing_ids


class InstanceSegmentationModule(L.LightningModule):
    """Base of the instance segmentation modules (see the module docstring).

    Subclasses implement :meth:`training_losses`, :meth:`predict_instances` and :meth:`backbone_parameters`,
    and may add metrics (:meth:`build_metrics`, :meth:`update_metrics`, :meth:`compute_scores`).

    Args:
        num_classes: number of semantic classes (background and stuff included).
        class_names: one name per class.
        thing_ids: the class ids with instances.
        optimizer: optimizer factory called with parameter groups.
        scheduler: scheduler factory called as ``scheduler(optimizer, max_steps=...)``, stepped per iteration,
            or ``None``.
        ignore_index: the void label of the semantic masks.
        backbone_lr_mult: the backbone's learning rate is the optimizer's ``lr`` times this.
        monitor: the metric checkpointing keeps the best of (the callbacks config and ``optimized_metric`` read
            this key); shown in the progress bar.
        cityscapes_scores: also report the official Cityscapes instance AP (the 19 Cityscapes classes; the
            evaluation batches hold the gtFine ``instance_ids``).
    """

    def __init__(
        self,
        num_classes: int,
        class_names: Sequence[str],
        thing_ids: Sequence[int] | None,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        ignore_index: int = 255,
        backbone_lr_mult: float = 1.0,
        monitor: str = "val/mAP",
        cityscapes_scores: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.class_names = list(class_names)
        self.thing_ids = check_thing_ids(thing_ids, num_classes)
        self.ignore_index = ignore_index
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.backbone_lr_mult = backbone_lr_mult
        self.monitor = monitor
        if cityscapes_scores:
            require_cityscapes_classes(self.class_names)
        self.cityscapes_scores = cityscapes_scores
        self.val_metrics = nn.ModuleDict(self.build_metrics())
        self.test_metrics = nn.ModuleDict(self.build_metrics())

    # What a family provides.
    def training_losses(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The weighted loss terms of a training batch by name; training minimises their sum."""
        raise NotImplementedError

    def predict_instances(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """One prediction dict per image (see the module docstring), in eval mode."""
        raise NotImplementedError

    def backbone_parameters(self) -> Iterable[nn.Parameter]:
        raise NotImplementedError

    def build_metrics(self) -> dict[str, Metric]:
        metrics: dict[str, Metric] = {"mask_ap": MaskAveragePrecision(self.class_names, self.thing_ids)}
        if self.cityscapes_scores:
            metrics["cityscapes_ap"] = CityscapesInstanceAP()
        return metrics

    def update_metrics(self, metrics: nn.ModuleDict, predictions: list[dict[str, torch.Tensor]], batch: dict[str, Any]) -> None:
        metrics["mask_ap"].update_instances(predictions, batch["instances"])
        if self.cityscapes_scores:
            metrics["cityscapes_ap"].update(predictions, require_instance_ids(batch))

    def compute_scores(self, metrics: nn.ModuleDict) -> dict[str, Any]:
        scores = metrics["mask_ap"].scores()
        if self.cityscapes_scores:
            scores.update(metrics["cityscapes_ap"].scores())
        return scores

    # What the builders and the commands ask the task: see the semantic module's counterparts.
    needs_instance_targets = True  # data.return_instances=null gives them (seglab.config.builders.build_datamodule)
    inference_modes: tuple[str, ...] = ("whole",)
    export_formats: tuple[str, ...] = INSTANCE_EXPORT_FORMATS  # eval.py export.format: seglab.writers.instances
    exportable = False  # model export (ONNX, TorchScript) covers the semantic models: logits out

    def check_inference_mode(self, option: str, mode: str) -> None:
        """Instance models predict whole images: another mode (``eval.mode``, ``predict.mode``) is refused, not ignored."""
        if mode not in self.inference_modes:
            raise UserError(f"{option}={mode} applies to semantic models; instance models predict whole images ({option}=whole)")

    def prediction_writer(self, export_format: str, out_dir: Path, datamodule: L.LightningDataModule) -> L.Callback:
        """The callback writing eval.py's predictions in ``export_format`` (``coco`` or ``cityscapes``)."""
        from seglab.writers.instance_prediction_writer import InstancePredictionWriter

        if export_format not in self.export_formats:
            raise UserError(
                f"export.format={export_format!r} is not an instance prediction format; use one of {list(self.export_formats)}"
            )
        return InstancePredictionWriter(export_format, out_dir)

    @torch.inference_mode()
    def write_image_prediction(self, image: Any, transforms: Callable | None, out_dir: Path, stem: str, **_: Any) -> list[Path]:
        """predict.py's files for one HxWx3 uint8 image: ``<stem>_instances.png`` and ``<stem>_instances.json``
        (:func:`seglab.writers.instances.write_instances`)."""
        from seglab.data.io import model_input
        from seglab.writers.instances import write_instances

        prediction = {key: value.cpu() for key, value in self(model_input(image, transforms, self.device))[0].items()}
        return write_instances(prediction, image, self.class_names, out_dir, stem)

    # The shared training and evaluation logic.
    def forward(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return self.predict_instances(images)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        require_instances(batch)
        terms = self.training_losses(batch)
        loss = sum(terms.values())
        batch_size = batch["image"].shape[0]
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/loss/{name}": value.detach() for name, value in terms.items()}, on_epoch=True, batch_size=batch_size)
        self.log_dict(learning_rates(self.trainer.optimizers[0]), on_step=True, on_epoch=False)
        return loss

    def _evaluation_step(self, batch: dict[str, Any], metrics: nn.ModuleDict) -> dict[str, Any]:
        require_instances(batch)
        predictions = self.predict_instances(batch["image"])
        self.update_metrics(metrics, predictions, batch)
        outputs: dict[str, Any] = {"instances": predictions}
        if predictions and "semantic" in predictions[0]:  # a semantic branch: its map, as semantic models return
            outputs["masks"] = {"prediction": torch.stack([p["semantic"] for p in predictions])}
        return outputs

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self._evaluation_step(batch, self.val_metrics)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self._evaluation_step(batch, self.test_metrics)

    def _log_scores(self, metrics: nn.ModuleDict, stage: str) -> None:
        scores = {f"{stage}/{name}": float(value) for name, value in self.compute_scores(metrics).items()}
        for metric in metrics.values():
            metric.reset()
        shown = f"{stage}/{self.monitor.split('/', 1)[-1]}"
        if shown in scores:
            self.log(shown, scores.pop(shown), prog_bar=True)
        self.log_dict(scores)

    def on_validation_epoch_end(self) -> None:
        self._log_scores(self.val_metrics, "val")

    def on_test_epoch_end(self) -> None:
        self._log_scores(self.test_metrics, "test")

    def configure_optimizers(self) -> dict[str, Any]:
        return optimizers_with_backbone_group(
            self, self.backbone_parameters(), self.optimizer_factory, self.scheduler_factory,
            self.backbone_lr_mult, self.trainer.estimated_stepping_batches,
        )  # fmt: skip


def require_instances(batch: dict[str, Any]) -> None:
    if "instances" not in batch:
        raise UserError(
            "the batches hold no instance targets: instance models need data.return_instances=true "
            "(its default, null, gives them instance targets; do not override it)"
        )
