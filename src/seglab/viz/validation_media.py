"""Media after every validation, for the dashboards and as files in the run directory: the per-class IoU table and
bar chart, the confusion matrix, the trimap curve and a fixed set of validation images with their ground truth and
prediction; and the run's curves (``media/curves.png``).

The images are the same ones every time (spread evenly over the validation split), so a dashboard's step
slider shows how the predictions evolve. Their predictions are taken from the validation pass itself (the
task's evaluation step returns ``{"masks": {name: labels}}``); only samples the main process did not see
(other DDP ranks, datasets without sample names) cost an extra forward pass. With one small figure per
validation, on the main process only, the media cost little.

Instance models (evaluation steps returning ``{"instances": [...]}``, see :mod:`seglab.tasks.instance`) also get
``val/instances/<k>``: each fixed image with its predicted instances in their own colours, boxed and captioned
``<class> <score>`` (:func:`seglab.viz.instances.draw_instances`).

Files (``media_dir``, the run directory's ``media/``, whatever the logger; the main process only; validations
while fitting, not the best checkpoint's validation after it, which repeats the best's)::

    media/latest/   the last validation's pictures, replaced by each validation
    media/best/     a copy of latest/ from the validation with the best monitored score (the best.ckpt's)
    media/curves.png  loss, the monitored metric and learning rates over the run (at the end; while training, after
                      a validation at most every CURVES_EVERY_S seconds)

Only the latest and the best validation are kept, so a long run does not fill the disk; each folder's
``info.json`` says which epoch and step it shows and their monitored score. A folder holds ``samples/<k>_<name>.png``
(input | ground truth | prediction, with the class legend), ``instances/<k>_<name>.png`` (instance models),
``confusion_matrix.png``, ``per_class_iou.png``, ``per_class.csv`` and ``trimap_curve.png`` (when scored).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image

from seglab.metrics import SegmentationMetrics, scores_from_confusion_matrix
from seglab.tracking.media import FileSink, MaskedImage, media_sinks, safe_name
from seglab.viz.instances import draw_instances
from seglab.viz.palette import Palette, default_palette
from seglab.viz.panels import confusion_matrix_image, titled, to_display
from seglab.viz.run_curves import RunHistory, curves_image, learning_rates
from seglab.viz.trimap_curve import curve_prefixes, trimap_curve_image, trimap_curves

log = logging.getLogger(__name__)

TABLE_COLUMNS = ["class", "IoU", "Acc", "GT pixels", "predicted pixels"]
# While training, curves.png is redrawn after a validation when it is older than this (a drawing costs ~0.5 s).
CURVES_EVERY_S = 300.0


class ValidationMedia(L.Callback):
    """Logs ``val/per_class`` (table), ``val/per_class_iou`` (bar chart), ``val/confusion_matrix`` and
    ``val/trimap_curve`` (images) and ``val/samples`` (images with ``ground_truth`` and ``prediction`` masks;
    instance models also ``val/instances/<k>``) to every logger that shows media, once per validation, and writes
    them to ``media_dir`` (see the module).

    Args:
        num_images: how many validation images to show (0: none).
        max_size: longer side, in pixels, of the images as logged: larger ones are shrunk, smaller ones enlarged
            by the largest whole factor that fits (nearest neighbour, so masks stay crisp).
        class_table: log the per-class IoU / accuracy table and bar chart.
        confusion_matrix: log the confusion matrix (normalised per ground-truth class) as an image.
        trimap_curve: log the trimap curve (:mod:`seglab.viz.trimap_curve`) as ``val/trimap_curve`` when the
            task scores trimap mIoU.
        media_dir: where the files go (``latest/``, ``best/``, ``curves.png``); None: no files.
        curves: write ``curves.png`` (into ``media_dir``).
    """

    def __init__(
        self, num_images: int = 4, max_size: int = 512, class_table: bool = True, confusion_matrix: bool = True,
        trimap_curve: bool = True, media_dir: str | Path | None = None, curves: bool = True,
    ) -> None:  # fmt: skip
        self.num_images = num_images
        self.max_size = max_size
        self.class_table = class_table
        self.confusion_matrix = confusion_matrix
        self.trimap_curve = trimap_curve
        self.media_dir = Path(media_dir) if media_dir is not None else None
        self.curves = curves
        self.sinks: list = []
        self.samples: list[dict[str, Any]] | None = None
        self.seen: dict[str, dict[str, np.ndarray]] = {}  # sample name -> masks predicted in this validation
        self.seen_instances: dict[str, dict[str, torch.Tensor]] = {}  # sample name -> instance prediction
        self.history = RunHistory()
        self.best: dict[str, Any] | None = None  # epoch, step, monitor, score of media/best/
        self.curves_drawn = time.monotonic()  # a run's first curves after CURVES_EVERY_S, or at its end

    def state_dict(self) -> dict[str, Any]:
        """The curves' history and the best validation so far: a resumed run continues both."""
        return {"history": self.history.state_dict(), "best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history.load_state_dict(state_dict.get("history", {}))
        self.best = state_dict.get("best")

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self.sinks = media_sinks(trainer.loggers)

    @staticmethod
    def in_fit(trainer: L.Trainer) -> bool:
        """A validation of the fit (not its sanity check, nor a validation after it)."""
        return trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking

    def writes_files(self, trainer: L.Trainer) -> bool:
        """Files for the validations of a fit (the same answer on every process: they all sum the matrix)."""
        return self.media_dir is not None and self.in_fit(trainer)

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen, self.seen_instances = {}, {}
        shown = self.sinks or self.writes_files(trainer)
        if shown and self.num_images and trainer.is_global_zero and not trainer.sanity_checking:
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
        files = self.writes_files(trainer)
        if trainer.sanity_checking or not (self.sinks or files):
            return
        confmat = self._confusion_matrix(pl_module)  # every process takes part in the sum
        curves = self._trimap_curves(pl_module) if self.trimap_curve else {}  # synced too
        if not trainer.is_global_zero:
            return
        started = time.perf_counter()
        if files and self._partial("latest").exists():  # left by a run killed while writing
            shutil.rmtree(self._partial("latest"))
        sinks = self.sinks + ([FileSink(self._partial("latest"))] if files else [])
        step, when = trainer.global_step, self.when(trainer)
        names, ignore_index = list(pl_module.class_names), pl_module.ignore_index
        if confmat is not None and self.class_table:
            rows = class_table_rows(confmat, names)
            ious = [row[1] for row in rows]
            miou = float(scores_from_confusion_matrix(confmat)["mIoU"])  # the metric's own mean (NaN: none scored)
            title = f"per-class IoU, {when}" + ("" if math.isnan(miou) else f" (mIoU {miou:.3f})")
            for sink in sinks:
                sink.log_table("val/per_class", TABLE_COLUMNS, rows, step)
                sink.log_bar_chart("val/per_class_iou", names, ious, title, step)
        if confmat is not None and self.confusion_matrix:
            picture = confusion_matrix_image(confmat.numpy(), names, f"confusion matrix (rows sum to 1), {when}")
            for sink in sinks:
                sink.log_image("val/confusion_matrix", picture, step)
        if curves:
            picture = trimap_curve_image(curves, f"trimap mIoU, {when}")
            for sink in sinks:
                sink.log_image("val/trimap_curve", picture, step)
        if self.num_images:
            items = self.render_samples(trainer, pl_module, when)
            for sink in sinks:
                sink.log_masked_images("val/samples", items, names, ignore_index, step, palette=dataset_palette(trainer, names))
            for index, (name, picture) in enumerate(self.render_instances(names, when)):
                for sink in sinks:  # files are named like the samples' (dashboards keep their keys)
                    key = f"val/instances/{index}_{safe_name(name)}" if isinstance(sink, FileSink) else f"val/instances/{index}"
                    sink.log_image(key, picture, step)
        log.debug("Validation media drawn in %.2f s", time.perf_counter() - started)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """With the validation's metrics logged: publish latest/, copy it to best/ when the monitored score
        improved, extend the history and redraw curves.png."""
        if not self.in_fit(trainer):
            return
        metrics = trainer.callback_metrics
        monitor, mode = self.monitor(trainer, pl_module)
        score = _number(metrics.get(monitor))
        info = {"epoch": trainer.current_epoch, "step": trainer.global_step, "monitor": monitor, "score": score}
        values = {"loss": _number(metrics.get("val/loss")), "monitor": score}
        self.history.add("val", trainer.global_step, trainer.current_epoch, values)
        improved = score is not None and (self.best is None or _better(score, self.best["score"], mode))
        if improved:
            self.best = info
        if self.media_dir is None or not trainer.is_global_zero:
            return
        partial = self._partial("latest")
        partial.mkdir(parents=True, exist_ok=True)
        (partial / "info.json").write_text(json.dumps(info, indent=2) + "\n")
        self._publish(partial, "latest")
        if improved:
            shutil.copytree(self.media_dir / "latest", self._partial("best"))
            self._publish(self._partial("best"), "best")
        if time.monotonic() - self.curves_drawn > CURVES_EVERY_S:
            self.write_curves(trainer, pl_module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.media_dir is None or not self.curves or trainer.global_step % max(1, trainer.log_every_n_steps):
            return
        metrics = trainer.callback_metrics
        loss = _number(metrics.get("train/loss_step", metrics.get("train/loss")))
        values = {"loss": loss, "lr": learning_rates(trainer.optimizers)}
        self.history.add("train", trainer.global_step, trainer.current_epoch, values)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.media_dir is not None and self.curves:
            metrics = trainer.callback_metrics
            loss = _number(metrics.get("train/loss_epoch", metrics.get("train/loss")))
            self.history.add("train_epoch", trainer.global_step, trainer.current_epoch, {"loss": loss})

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.write_curves(trainer, pl_module)  # also after an early stop, and without validation

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        try:  # the curves of a stopped run (Ctrl-C, preemption, a failure) are still worth having
            self.write_curves(trainer, pl_module)
        except Exception:  # noqa: BLE001 - never hide the run's own exception
            log.debug("curves.png not written", exc_info=True)

    def write_curves(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """``media/curves.png`` from the history (main process)."""
        if self.media_dir is None or not self.curves or not trainer.is_global_zero:
            return
        monitor, mode = self.monitor(trainer, pl_module)
        last = self.history.train[-1:] + self.history.val[-1:]
        epoch = max((row["epoch"] for row in last), default=0)
        title = f"{type(pl_module).__name__}, up to step {trainer.global_step} (epoch {epoch + 1})"
        self.media_dir.mkdir(parents=True, exist_ok=True)
        FileSink(self.media_dir).log_image("curves", curves_image(self.history, monitor, mode, title), trainer.global_step)
        self.curves_drawn = time.monotonic()

    def when(self, trainer: L.Trainer) -> str:
        """What a validation shows, for titles: ``epoch E, step S`` (epochs from 1, as the progress bar and the closing
        summary count them; info.json keeps Lightning's 0-based ``epoch``); after a fit, train.py's validation of
        best.ckpt is ``best checkpoint: epoch E, step S`` (the best validation's, not the fit's last)."""
        if trainer.state.fn != TrainerFn.FITTING and self.best is not None:
            return f"best checkpoint: epoch {self.best['epoch'] + 1}, step {self.best['step']}"
        return f"epoch {getattr(trainer, 'current_epoch', 0) + 1}, step {trainer.global_step}"

    @staticmethod
    def monitor(trainer: L.Trainer, pl_module: L.LightningModule) -> tuple[str, str]:
        """The metric best.ckpt is chosen by and its mode (the checkpoint callback's; else the task's, max)."""
        checkpoint = getattr(trainer, "checkpoint_callback", None)
        if checkpoint is not None and getattr(checkpoint, "monitor", None):
            return checkpoint.monitor, checkpoint.mode
        return getattr(pl_module, "monitor", "val/mIoU"), "max"

    def _partial(self, name: str) -> Path:
        return self.media_dir / f".{name}.partial"

    def _publish(self, partial: Path, name: str) -> None:
        """Replace ``media/<name>`` by ``partial`` whole, so it never mixes two validations."""
        target = self.media_dir / name
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)

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

    def render_samples(self, trainer: L.Trainer, pl_module: L.LightningModule, when: str = "") -> list[MaskedImage]:
        """Each fixed sample with its ground truth and the model's current prediction, sized for display, captioned
        with its name (panels: and ``when``, the epoch and step)."""
        samples = self.fixed_samples(trainer)
        missing = [sample for sample in samples if sample["name"] not in self.seen]
        if missing:
            self.seen.update(self._predict(trainer, pl_module, missing))
        items = []
        for sample in samples:
            masks = {"ground_truth": sample["mask"], **self.seen[sample["name"]]}
            heading = f"{sample['name']}, {when}" if when else ""
            items.append(self._fit_for_display(MaskedImage(sample["display"], masks, caption=sample["name"], heading=heading)))
        return items

    def render_instances(self, class_names: list[str], when: str = "") -> list[tuple[str, np.ndarray]]:
        """``(sample name, picture)``: each fixed sample with its predicted instances drawn over it, sized for display,
        under a line with its name, ``when`` and the number of instances (none for semantic models)."""
        pictures = []
        for sample in self.samples or []:
            instances = self.seen_instances.get(sample["name"])
            if instances is None:
                continue
            drawn = self._fit_for_display(MaskedImage(draw_instances(sample["display"], instances, class_names))).image
            heading = ", ".join(part for part in (sample["name"], when) if part)
            pictures.append((sample["name"], titled(drawn, [f"{len(instances['masks'])} predicted instances"], heading)))
        return pictures

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
        return replace(item, image=image, masks=masks)


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


def _better(score: float, best: float, mode: str) -> bool:
    """Strictly better, as ModelCheckpoint replaces its best (a tie keeps the earlier one)."""
    return score > best if mode == "max" else score < best


def _number(value: Any) -> float | None:
    """A logged value as a float; None when missing or not a number."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
