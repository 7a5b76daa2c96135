"""Semantic segmentation as a LightningModule: backbone + decoder + classifier, a loss, confusion-matrix metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn
import torch
import torch.nn.functional as F
from torch import nn

from seglab.data.transforms import Normalize
from seglab.inference import whole_inference
from seglab.inference.crf import DenseCRF
from seglab.metrics import SegmentationMetrics
from seglab.metrics.boundary import DEFAULT_DILATION_RATIO, DEFAULT_TRIMAP_WIDTHS, BoundaryIoU, TrimapMIoU
from seglab.metrics.cityscapes_inputs import require_instance_ids
from seglab.metrics.cityscapes_pixel import semantic_metrics
from seglab.models import Segmentor
from seglab.optim.setup import learning_rates, optimizers_with_backbone_group
from seglab.runtime.errors import UserError
from seglab.writers.semantic import EXPORT_FORMATS

# torch.compile pays on GPUs (benchmarks/recipe_speed.py); on the CPU its kernels lose to eager mode's.
CPU_COMPILE_WARNING = (
    "model.compile=true on the CPU: a training step is about 1.4x slower than without it (benchmarks/compile_cpu.py, "
    "benchmarks/README.md) and the first steps spend some 20 CPU seconds compiling; set model.compile=false unless the "
    "run trains on a GPU"
)


class SemanticSegmentationModule(L.LightningModule):
    """Trains a :class:`~seglab.models.Segmentor` and reports confusion-matrix metrics per split.

    Metrics are logged as ``<stage>/mIoU``, ``<stage>/mAcc``, ``<stage>/aAcc``, ``<stage>/fwIoU``,
    ``<stage>/IoU/<class name>`` and ``<stage>/Acc/<class name>`` for stage ``val`` and ``test``; the training
    loss as ``train/loss`` (with an auxiliary head: main loss + ``aux_weight`` x ``train/aux_loss``; the terms of
    a :class:`~seglab.losses.CombinedLoss` as ``train/loss/<name>``). Evaluation steps return
    ``{"masks": {"prediction": labels}}`` for callbacks that show or write them. With ``cityscapes_scores``
    they also log the official Cityscapes ``iIoU``, ``mIoU_category``, ``iIoU_category``, ``iIoU_class/<class>``
    and ``IoU_category/<category>`` (:mod:`seglab.metrics.cityscapes_pixel`). Boundary metrics
    (:mod:`seglab.metrics.boundary`): ``<stage>/trimap_mIoU/<w>`` per band width, ``<stage>/boundary_mIoU`` and
    ``<stage>/boundary_IoU/<class name>``. With a ``postprocess`` the scores are those of the post-processed
    prediction, and ``<stage>/network/mIoU``, ``<stage>/network/trimap_mIoU/<w>`` and
    ``<stage>/network/boundary_mIoU`` those of the network's own (the same pass scores both); the loss is always
    the network's.

    Args:
        backbone: encoder module (see :func:`seglab.models.build_backbone`).
        decoder: decoder factory (a partial taking ``encoder_channels`` and ``output_stride``).
        num_classes: number of classes.
        loss: a module called as ``loss(logits, target)``.
        optimizer: optimizer factory called with parameter groups (``lr`` etc. bound by the config).
        scheduler: scheduler factory called as ``scheduler(optimizer, max_steps=...)``, stepped per iteration,
            or ``None`` for a constant learning rate.
        class_names: names for per-class metrics (default: class indices).
        ignore_index: label value excluded from loss and metrics.
        backbone_lr_mult: the backbone's learning rate is the optimizer's ``lr`` times this.
        classifier_dropout: dropout before the 1x1 classifier.
        channels_last: keep the network's weights and input images in the channels-last memory format (faster
            convolutions on tensor-core GPUs, above all under mixed precision).
        compile: compile the backbone and decoder with ``torch.compile``: ``True``, or a dict of its options
            (``{mode: max-autotune}``); the checkpoint's parameter names stay the same.
        aux_weight: weight of an auxiliary FCN head's loss on the stride-16 stage (training only); ``0`` or
            ``None`` builds no auxiliary head.
        inference: how validation and test compute logits, called as ``inference(net, images)`` (see
            :mod:`seglab.inference`; default: one pass over the whole image).
        cityscapes_scores: also score as the official Cityscapes evaluation (the 19 Cityscapes classes; the
            evaluation batches hold the gtFine ``instance_ids``).
        postprocess: a :class:`~seglab.inference.crf.DenseCRF` refining the softmax of the inference mode's
            logits at the input resolution (validation, test and :meth:`class_scores`), or ``None``.
        input_normalize: the data's :class:`~seglab.data.transforms.Normalize`, undone to give the CRF the
            colour image (required with ``postprocess``; :func:`seglab.config.builders.build_model` passes it).
        trimap_widths: band widths (pixels) of the trimap mIoU; empty: none.
        boundary_dilation_ratio: Boundary IoU's band as a fraction of the image diagonal; ``None``: no Boundary IoU.

    Under mixed precision the network runs in 16 bits, but its logits are upsampled in float32 (see
    :class:`~seglab.models.Segmentor`) and the loss is computed in float32 with autocast off.
    """

    def __init__(
        self,
        backbone: nn.Module,
        decoder: Callable[..., nn.Module],
        num_classes: int,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        class_names: Sequence[str] | None = None,
        ignore_index: int = 255,
        backbone_lr_mult: float = 1.0,
        classifier_dropout: float = 0.1,
        aux_weight: float | None = None,
        inference: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
        channels_last: bool = False,
        compile: bool | dict[str, Any] = False,
        cityscapes_scores: bool = False,
        postprocess: DenseCRF | None = None,
        input_normalize: Normalize | None = None,
        trimap_widths: Sequence[int] = DEFAULT_TRIMAP_WIDTHS,
        boundary_dilation_ratio: float | None = DEFAULT_DILATION_RATIO,
    ) -> None:
        super().__init__()
        ignored = ["backbone", "decoder", "loss", "optimizer", "scheduler", "inference", "postprocess", "input_normalize"]
        self.save_hyperparameters(ignore=ignored)
        self.net = Segmentor(backbone, decoder, num_classes, dropout=classifier_dropout, aux_head=bool(aux_weight))
        self.aux_weight = aux_weight or 0.0
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        self.ignore_index = ignore_index
        self.backbone_lr_mult = backbone_lr_mult
        self.channels_last = channels_last
        if channels_last:
            self.net.to(memory_format=torch.channels_last)
        if compile:  # the parts, not the Segmentor: training calls its forward_with_aux, not forward
            for part in (self.net.backbone, self.net.decoder):
                part.compile(**(compile if isinstance(compile, dict) else {}))
        self.compiled = bool(compile)
        self.inference = inference or whole_inference
        self.cityscapes_scores = cityscapes_scores
        self.val_metrics = semantic_metrics(num_classes, ignore_index, self.class_names, cityscapes_scores)
        self.test_metrics = semantic_metrics(num_classes, ignore_index, self.class_names, cityscapes_scores)
        if postprocess is not None and input_normalize is None:
            raise UserError(
                "postprocess=densecrf needs the colour images, but data.val_transforms has no "
                "seglab.data.transforms.Normalize to undo; add one or drop postprocess"
            )
        self.postprocess = postprocess
        self.input_normalize = input_normalize
        boundary = dict(
            num_classes=num_classes, ignore_index=ignore_index, class_names=self.class_names,
            trimap_widths=list(trimap_widths), dilation_ratio=boundary_dilation_ratio,
        )  # fmt: skip
        self.val_boundary = boundary_metrics(**boundary)
        self.test_boundary = boundary_metrics(**boundary)
        # The network's own scores beside the post-processed ones, for the before/after comparison.
        self.val_network = network_metrics(boundary) if postprocess is not None else None
        self.test_network = network_metrics(boundary) if postprocess is not None else None

    def on_fit_start(self) -> None:
        if self.compiled and self.device.type == "cpu":
            rank_zero_warn(CPU_COMPILE_WARNING)

    # What the builders and the commands ask the task. Instance targets: only with data.return_instances=true (the
    # Cityscapes iIoU reads instance ids of its own). eval.mode / predict.mode: every option of the inference group.
    needs_instance_targets = False
    inference_modes: tuple[str, ...] = ("whole", "slide", "tta")
    export_formats: tuple[str, ...] = EXPORT_FORMATS  # eval.py export.format: seglab.writers.semantic
    exportable = True  # model export (ONNX, TorchScript: seglab.commands.export) applies

    def check_inference_mode(self, option: str, mode: str) -> None:
        if mode not in self.inference_modes:
            raise UserError(f"{option}={mode} is not an inference mode; use one of {', '.join(self.inference_modes)}")

    def prediction_writer(self, export_format: str, out_dir: Path, datamodule: L.LightningDataModule) -> L.Callback:
        """The callback writing eval.py's predictions in ``export_format``, in the dataset's palette; ``color``
        needs the input normalisation to show the images again."""
        from seglab.data.transforms import find_normalize
        from seglab.writers.prediction_writer import PredictionWriter

        if export_format not in self.export_formats:
            raise UserError(f"export.format={export_format!r} is not a prediction format; use one of {list(self.export_formats)}")
        normalize = find_normalize(datamodule.val_transforms)
        if export_format == "color" and normalize is None:
            raise UserError(
                "export.format=color overlays the predictions on the images, but data.val_transforms has no "
                "seglab.data.transforms.Normalize to undo; use export.format=png"
            )
        return PredictionWriter(export_format, out_dir, datamodule.palette, normalize, self.class_names)

    @torch.inference_mode()
    def write_image_prediction(
        self, image: Any, transforms: Callable | None, out_dir: Path, stem: str, palette: Any = (), overlay_alpha: float = 0.5
    ) -> list[Path]:
        """predict.py's files for one HxWx3 uint8 image, with this task's inference mode: ``<stem>_mask.png``
        (class indices) and ``<stem>_color.png`` (colour mask in ``palette`` beside the overlay, above a class legend)."""
        from seglab.data.io import model_input
        from seglab.writers.semantic import save_classes, save_color

        _, scores = self.class_scores(model_input(image, transforms, self.device))  # with the post-processing, if any
        classes = scores.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()
        mask = save_classes(classes, out_dir / f"{stem}_mask.png")
        return [mask, save_color(classes, image, palette, out_dir / f"{stem}_color.png", overlay_alpha, self.class_names)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)

    def images(self, batch: dict[str, Any]) -> torch.Tensor:
        """The batch's images in the network's memory format."""
        images = batch["image"]
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def class_scores(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, scores)`` at the images' size: the inference mode's logits and what the prediction is the
        argmax of, the post-processed probabilities with a ``postprocess`` (else the logits themselves)."""
        logits = self.inference(self.net, images)
        if self.postprocess is None:
            return logits, logits
        probs = logits.float().softmax(dim=1)
        return logits, self.postprocess(probs, self.input_normalize.denormalize(images.float()))

    def compute_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The loss in float32, with autocast off: mixed precision speeds up the network, not the loss."""
        with torch.autocast(logits.device.type, enabled=False):
            return self.loss(logits.float(), target)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        target = batch["mask"].long()
        logits, aux_logits = self.net.forward_with_aux(self.images(batch))
        loss = self.compute_loss(logits, target)
        terms = dict(getattr(self.loss, "last_terms", {}))  # a CombinedLoss's terms, before the aux call replaces them
        if aux_logits is not None:
            aux_loss = self.compute_loss(aux_logits, target)
            self.log("train/aux_loss", aux_loss, on_step=True, on_epoch=True, batch_size=logits.shape[0])
            loss = loss + self.aux_weight * aux_loss
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=logits.shape[0])
        self.log_dict({f"train/loss/{name}": v for name, v in terms.items()}, on_epoch=True, batch_size=logits.shape[0])
        self.log_dict(learning_rates(self.trainer.optimizers[0]), on_step=True, on_epoch=False)
        return loss

    def _evaluation_step(self, batch: dict[str, Any], stage: str) -> dict[str, Any]:
        """Update the metrics; return the predicted classes at the label's resolution (for media and writers)."""
        target = batch["mask"].long()
        logits, scores = self.class_scores(self.images(batch))
        if logits.shape[-2:] != target.shape[-2:]:  # score at the label's resolution
            size = target.shape[-2:]
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
            # the post-processed probabilities, else the logits themselves
            scores = logits if self.postprocess is None else F.interpolate(scores, size=size, mode="bilinear", align_corners=False)
        self.log(f"{stage}/loss", self.compute_loss(logits, target), batch_size=logits.shape[0], sync_dist=True)
        preds = scores.argmax(dim=1)
        metrics = getattr(self, f"{stage}_metrics")
        if self.cityscapes_scores:
            metrics.update(preds, target, require_instance_ids(batch))
        else:
            metrics.update(preds, target)
        for metric in getattr(self, f"{stage}_boundary").values():
            metric.update(preds, target)
        network = getattr(self, f"{stage}_network")
        if network is not None:
            network_preds = logits.argmax(dim=1)
            for metric in network.values():
                metric.update(network_preds, target)
        return {"masks": {"prediction": preds}}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self._evaluation_step(batch, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        return self._evaluation_step(batch, "test")

    def _log_scores(self, stage: str) -> None:
        metrics: SegmentationMetrics = getattr(self, f"{stage}_metrics")
        values = {f"{stage}/{name}": value for name, value in metrics.named_scores().items()}  # synced by torchmetrics
        self.log(f"{stage}/mIoU", values.pop(f"{stage}/mIoU").float(), prog_bar=True)
        self.log_dict({key: value.float() for key, value in values.items()})
        metrics.reset()
        network = getattr(self, f"{stage}_network")
        for prefix, group in ((f"{stage}/", getattr(self, f"{stage}_boundary")), (f"{stage}/network/", network)):
            for metric in (group or {}).values():
                scores = metric_scores(metric, means_only=group is network)
                self.log_dict({prefix + name: value.float() for name, value in scores.items()})
                metric.reset()

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")

    def configure_optimizers(self) -> dict[str, Any]:
        return optimizers_with_backbone_group(
            self, self.net.backbone.parameters(), self.optimizer_factory, self.scheduler_factory,
            self.backbone_lr_mult, self.trainer.estimated_stepping_batches,
        )  # fmt: skip


def boundary_metrics(
    num_classes: int, ignore_index: int, class_names: Sequence[str], trimap_widths: Sequence[int], dilation_ratio: float | None
) -> nn.ModuleDict:
    """The trimap mIoU (unless ``trimap_widths`` is empty) and Boundary IoU (unless ``dilation_ratio`` is None)."""
    metrics = nn.ModuleDict()
    if len(trimap_widths):
        metrics["trimap"] = TrimapMIoU(num_classes, trimap_widths, ignore_index)
    if dilation_ratio is not None:
        metrics["boundary"] = BoundaryIoU(num_classes, dilation_ratio, ignore_index, class_names)
    return metrics


def network_metrics(options: dict[str, Any]) -> nn.ModuleDict:
    """The network's own mIoU and boundary metrics, scored beside a post-processed prediction."""
    metrics = boundary_metrics(**options)
    metrics["confusion"] = SegmentationMetrics(options["num_classes"], options["ignore_index"], options["class_names"])
    return metrics


def metric_scores(metric: nn.Module, means_only: bool = False) -> dict[str, torch.Tensor]:
    """A boundary metric's scores, or a confusion matrix's mIoU; ``means_only`` leaves out the per-class ones
    (for the network's scores beside a post-processed prediction)."""
    scores = {"mIoU": metric.named_scores()["mIoU"]} if isinstance(metric, SegmentationMetrics) else metric.compute()
    return {name: value for name, value in scores.items() if not (means_only and name.startswith("boundary_IoU/"))}
