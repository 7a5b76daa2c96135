"""Writes the predictions of every validation/test batch while eval.py scores them (``export.format``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
import torch.nn.functional as F

from seglab.data.transforms import Normalize
from seglab.viz.palette import Palette
from seglab.writers.semantic import write_prediction


class PredictionWriter(L.Callback):
    """Saves each predicted class map of the validate/test loop under ``out_dir`` in ``export_format``.

    Args:
        export_format: ``cityscapes``, ``png`` or ``color`` (see :mod:`seglab.writers.semantic`).
        out_dir: folder to write into.
        palette: class colours, for ``color``.
        class_names: the legend under ``color`` files (none without).
        normalize: the input normalisation, undone to show the images under ``color`` overlays.
    """

    def __init__(
        self, export_format: str, out_dir: Path, palette: Palette = (), normalize: Normalize | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        self.export_format = export_format
        self.out_dir = Path(out_dir)
        self.palette = palette
        self.normalize = normalize
        self.class_names = class_names
        self.written = 0

    def _write(self, preds: torch.Tensor, batch: dict[str, Any]) -> None:
        images = None
        if self.export_format == "color" and self.normalize is not None:
            pixels = batch["image"].float()
            if pixels.shape[-2:] != preds.shape[-2:]:
                pixels = F.interpolate(pixels, size=preds.shape[-2:], mode="bilinear", align_corners=False)
            images = self.normalize.denormalize(pixels).permute(0, 2, 3, 1).cpu().numpy()
        for index, (classes, name) in enumerate(zip(preds.cpu().numpy(), batch["name"])):
            image = images[index] if images is not None else None
            write_prediction(self.export_format, classes, name, self.out_dir, image, self.palette, self.class_names)
            self.written += 1

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._write(outputs["masks"]["prediction"], batch)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._write(outputs["masks"]["prediction"], batch)
