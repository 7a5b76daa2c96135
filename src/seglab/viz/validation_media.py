"""Dashboard media after every validation: the per-class IoU table, the confusion matrix, the trimap curve and a
fixed set of validation images with their ground truth and prediction.

The images are the same ones every time (spread evenly over the validation split), so a dashboard's step
slider shows how the predictions evolve. Their predictions are taken from the validation pass itself (the
task's evaluation step returns ``{"masks": {name: labels}}``); only samples the main process did not see
(other DDP ranks, datasets without sample names) cost an extra forward pass. With one small figure per
validation, on the main process only, the media cost little; nothing is done when no active logger shows media
(CSV).

Instance models (evaluation steps returning ``{"instances": [...]}``, see :mod:`seglab.tasks.instance`) also get
``val/instances/<k>``: each fixed image with its predicted instances in their own colours, boxed and captioned
``<class> <score>`` (:func:`seglab.viz.instances.draw_instances`).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from seglab.metrics import SegmentationMetrics, scores_from_confusion_matrix
from seglab.tracking.media import MaskedImage, media_sinks
from seglab.viz.instances import draw_instances
from seglab.viz.palette import Palette, default_palette
from seglab.viz.panels import confusion_matrix_image, to_display
from seglab.viz.trimap_curve import curve_prefixes, trimap_curve_image, trimap_curves

TABLE_COLUMNS = ["class", "IoU", "Acc", "GT pixels", "predicted pixels"]


class ValidationMedia(L.Callback):
    """Logs ``val/per_class`` (table), ``val/confusion_matrix`` and ``val/trimap_curve`` (images) and
    ``val/samples`` (images with ``ground_truth`` and ``prediction`` masks; instance models also
    ``val/instances/<k>``) to every logger that shows media, once per validation.

    Args:
        num_images: how many validation images to show (0: none).
        max_size: longer side, in pixels, of the images as logged: larger ones are shrunk, smaller ones enlarged
            by the largest whole factor that fits (nearest neighbour, so masks stay crisp).
        class_table: log the per-class IoU / accuracy table.
        confusion_matrix: log the confusion matrix (normalised per ground-truth class) as an image.
        trimap_curve: log the trimap curve (:mod:`seglab.viz.trimap_curve`) as ``val/trimap_curve`` when the
            task scores trimap mIoU.
    """

    def __init__(
        self, num_images: int = 4, max_size: int = 512, class_table: bool = True, confusion_matrix: bool = True,
        trimap_curve: bool = True,
    ) -> None:  # fmt: skip
        self.num_images = num_images
        self.max_size = max_size
        self.class_table = class_table
        self.confusion_matrix = confusion_matrix
        self.trimap_curve = trimap_curve
        self.sinks: list = []
        self.samples: list[dict[str, Any]] | None = None
        self.seen: dict[str, dict[str, np.ndarray]] = {}  # sample name -> masks predicted in this validation
        self.seen_instances: dict[str, dict[str, torch.Tensor]] = {}  # sample name -> instance prediction

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.sinks = media_sinks(trainer.loggers)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen, self.seen_instances = {}, {}
        if self.sinks and self.num_images and trainer.is_global_zero and not trainer.sanity_checking:
            self.fixed_samples(trainer)

    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        """Keep the predictions of the fixed samples as the validation computes them."""
        if not self.samples or dataloader_idx != 0 or not isinstance(outputs, dict) or not isinstance(batch, dict):
            return
        wanted = {sample["name"] for sample in self.samples}
        masks = outputs.get("masks") or {}
        instances = outputs.get("instances")
        for row, name in enumerate(batch.get("name") or []):
            if name in wanted:
                self.seen[name] = {key: value[row].detach().cpu().numpy() for key, value in masks.items()}
                if instances is not None:
                    self.seen_instances[name] = {key: value.detach().cpu() for key, value in instances[row].items()}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.sinks:
            return
        confmat = self._confusion_matrix(pl_module)  # every process takes part in the sum
        curves = self._trimap_curves(pl_module) if self.trimap_curve else {}  # synced too
        if not trainer.is_global_zero:
            return
        step = trainer.global_step
        names, ignore_index = list(pl_module.class_names), pl_module.ignore_index
        if confmat is not None and self.class_table:
            rows = class_table_rows(confmat, names)
            for sink in self.sinks:
                sink.log_table("val/per_class", TABLE_COLUMNS, rows, step)
        if confmat is not None and self.confusion_matrix:
            picture = confusion_matrix_image(confmat.numpy(), names)
            for sink in self.sinks:
                sink.log_image("val/confusion_matrix", picture, step)
        if curves:
            picture = trimap_curve_image(curves, f"trimap mIoU, step {step}")
            for sink in self.sinks:
                sink.log_image("val/trimap_curve", picture, step)
        if self.num_images:
            items = self.render_samples(trainer, pl_module)
            for sink in self.sinks:
                sink.log_masked_images("val/samples", items, names, ignore_index, step, palette=dataset_palette(trainer, names))
            for index, picture in enumerate(self.render_instances(names)):
                for sink in self.sinks:
                    sink.log_image(f"val/instances/{index}", picture, step)

    @staticmethod
    def _confusion_matrix(pl_module: L.LightningModule) -> torch.Tensor | None:
        """The validation confusion matrix summed over processes, before the task resets it (callbacks' epoch-end
        hooks run before the module's)."""
        metric = getattr(pl_module, "val_metrics", None)
        if not isinstance(metric, SegmentationMetrics):
            return None
        with metric.sync_context():
            return metric.confmat.detach().cpu().clone()

    @staticmethod
    def _trimap_curves(pl_module: L.LightningModule) -> dict[str, dict[int, float]]:
        """The validation trimap curves (summed over processes), the network's own beside a post-processed one."""
        network = getattr(pl_module, "val_network", None)
        scores = {}
        for prefix, group in (("val/", getattr(pl_module, "val_boundary", None)), ("val/network/", network)):
            if group is not None and "trimap" in group:
                scores.update({prefix + name: value.item() for name, value in group["trimap"].compute().items()})
        return trimap_curves(scores, curve_prefixes("val/", network is not None))

    def fixed_samples(self, trainer: L.Trainer) -> list[dict[str, Any]]:
        """The validation samples to show, picked once, evenly spread over the split."""
        if self.samples is None:
            loader = trainer.val_dataloaders
            dataset = (loader[0] if isinstance(loader, (list, tuple)) else loader).dataset
            count = min(self.num_images, len(dataset))
            indices = sorted({int(i) for i in np.linspace(0, len(dataset) - 1, count).round()}) if count else []
            transforms = getattr(dataset, "transforms", None)
            self.samples = []
            for index in indices:
                sample = dataset[index]
                self.samples.append(
                    {
                        "image": sample["image"],
                        "display": to_display(sample["image"], transforms),
                        "mask": np.asarray(sample["mask"]).astype(np.int64),
                        "name": str(sample.get("name", f"{dataset.__class__.__name__}[{index}]")),
                    }
                )
        return self.samples

    def render_samples(self, trainer: L.Trainer, pl_module: L.LightningModule) -> list[MaskedImage]:
        """Each fixed sample with its ground truth and the model's current prediction, sized for display."""
        samples = self.fixed_samples(trainer)
        missing = [sample for sample in samples if sample["name"] not in self.seen]
        if missing:
            self.seen.update(self._predict(trainer, pl_module, missing))
        items = []
        for sample in samples:
            masks = {"ground_truth": sample["mask"], **self.seen[sample["name"]]}
            items.append(self._fit_for_display(MaskedImage(sample["display"], masks, caption=sample["name"])))
        return items

    def render_instances(self, class_names: list[str]) -> list[np.ndarray]:
        """Each fixed sample with its predicted instances drawn over it, sized for display (none for semantic models)."""
        return [
            self._fit_for_display(MaskedImage(draw_instances(sample["display"], self.seen_instances[sample["name"]], class_names))).image
            for sample in self.samples or []
            if sample["name"] in self.seen_instances
        ]

    def _predict(self, trainer: L.Trainer, pl_module: L.LightningModule, samples: list[dict[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
        """Predicted masks of samples the validation pass did not show this process, one forward pass each."""
        was_training = pl_module.training
        pl_module.eval()
        predicted = {}
        for sample in samples:
            image = sample["image"].unsqueeze(0).to(pl_module.device)
            with torch.no_grad(), trainer.precision_plugin.forward_context():
                masks = self.predicted_masks(pl_module, image, sample["mask"].shape)
            predicted[sample["name"]] = {name: mask[0] for name, mask in masks.items() if name != "instances"}
            if "instances" in masks:
                self.seen_instances[sample["name"]] = masks["instances"][0]
        pl_module.train(was_training)
        return predicted

    def predicted_masks(self, pl_module: L.LightningModule, images: torch.Tensor, size: tuple[int, int]) -> dict[str, np.ndarray]:
        """The model's label maps for a batch of images (Nx3xHxW) at the ground truth's ``size``:
        ``{"prediction": N x H x W}``. Other tasks add their own maps here. Instance models return their
        ``"instances"`` (one prediction dict per image) and, with a semantic branch, its map as the prediction."""
        outputs = pl_module(images)
        if isinstance(outputs, list):  # instance predictions, at the image's size
            masks = {"instances": [{key: value.cpu() for key, value in p.items()} for p in outputs]}
            if outputs and "semantic" in outputs[0]:
                masks["prediction"] = torch.stack([p["semantic"] for p in outputs]).cpu().numpy()
            return masks
        logits = outputs
        if logits.shape[-2:] != tuple(size):
            logits = F.interpolate(logits.float(), size=tuple(size), mode="bilinear", align_corners=False)
        return {"prediction": logits.argmax(dim=1).cpu().numpy()}

    def _fit_for_display(self, item: MaskedImage) -> MaskedImage:
        """Shrink to ``max_size`` on the longer side; enlarge small images by the largest whole factor that fits."""
        height, width = item.image.shape[:2]
        longer = max(height, width)
        scale = self.max_size / longer if longer > self.max_size else self.max_size // longer
        if scale == 1:
            return item
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = np.asarray(Image.fromarray(item.image).resize(size, Image.BILINEAR if scale < 1 else Image.NEAREST))
        masks = {name: np.asarray(Image.fromarray(m.astype(np.int32)).resize(size, Image.NEAREST)) for name, m in item.masks.items()}
        return MaskedImage(image, masks, item.caption, item.mask_labels)


def dataset_palette(trainer: L.Trainer, class_names: list[str]) -> Palette:
    """The class colours of the run's data (``data.palette``, e.g. Cityscapes' official ones), as predict.py uses."""
    palette = getattr(getattr(trainer, "datamodule", None), "palette", None)
    return palette if palette else default_palette(len(class_names))


def class_table_rows(confmat: torch.Tensor, class_names: list[str]) -> list[list[Any]]:
    """One row per class: name, IoU, accuracy (None where undefined), ground-truth and predicted pixel counts."""
    scores = scores_from_confusion_matrix(confmat)

    def value(x: torch.Tensor) -> float | None:
        return None if torch.isnan(x) else float(x)

    return [
        [name, value(scores["IoU"][i]), value(scores["Acc"][i]), int(confmat[i].sum()), int(confmat[:, i].sum())]
        for i, name in enumerate(class_names)
    ]
