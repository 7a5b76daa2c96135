"""Pictures of segmentations for dashboards: side-by-side panels with a colour legend, in the dataset's palette
(:mod:`seglab.viz.palette`), and the confusion matrix. Pure functions on NumPy arrays (HxWx3 uint8 images, HxW
integer label maps)."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from seglab.data.transforms import find_normalize
from seglab.viz.palette import Palette, default_palette, overlay

def legend(class_names: Sequence[str], palette: Palette, width: int, row_height: int = 14) -> np.ndarray:
    """A strip ``width`` pixels wide listing each class's colour and name."""
    font = ImageFont.load_default()
    cell = max(row_height * 6, max(int(font.getlength(name)) for name in class_names) + row_height + 8)
    per_row = max(1, width // cell)
    rows = -(-len(class_names) // per_row)
    strip = Image.new("RGB", (width, rows * row_height + 4), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for index, name in enumerate(class_names):
        x, y = (index % per_row) * cell + 2, (index // per_row) * row_height + 2
        draw.rectangle([x, y + 2, x + row_height - 4, y + row_height - 2], fill=tuple(int(c) for c in palette[index]))
        draw.text((x + row_height, y), name, fill=(0, 0, 0), font=font)
    return np.asarray(strip)


def panel(image: np.ndarray, masks: Mapping[str, np.ndarray], class_names: Sequence[str], palette: Palette | None = None) -> np.ndarray:
    """The image, then each mask (ground truth, prediction, ...) over it, side by side, above a colour legend;
    ``palette``: the dataset's class colours (default: :func:`~seglab.viz.palette.default_palette`)."""
    palette = palette if palette is not None else default_palette(len(class_names))
    row = np.concatenate([image, *(overlay(image, m, palette) for m in masks.values())], axis=1)
    return np.concatenate([row, legend(class_names, palette, row.shape[1])], axis=0)


def confusion_matrix_image(confmat: np.ndarray, class_names: Sequence[str]) -> np.ndarray:
    """The confusion matrix (rows: ground truth, columns: prediction) normalised per ground-truth class, as an
    RGB image; cells show the fraction of each class's pixels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = confmat.astype(np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    size = 2.5 + 0.45 * n
    figure = Figure(figsize=(size + 1, size), dpi=80)
    axes = figure.subplots()
    shown = axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(n), class_names, rotation=90)
    axes.set_yticks(range(n), class_names)
    axes.set_xlabel("prediction")
    axes.set_ylabel("ground truth")
    if n <= 20:
        for true in range(n):
            for pred in range(n):
                colour = "white" if rates[true, pred] > 0.5 else "black"
                axes.text(pred, true, f"{rates[true, pred]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    figure.tight_layout()
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def to_display(image: torch.Tensor, transforms: Callable | None = None) -> np.ndarray:
    """A model input (3xHxW, normalised by ``transforms``' ``Normalize`` if it has one) as an HxWx3 uint8 image."""
    if image.dtype == torch.uint8:
        return image.detach().cpu().permute(1, 2, 0).numpy()
    image = image.detach().float().cpu()
    normalize = find_normalize(transforms)
    if normalize is not None:
        image = image * torch.tensor(normalize.std).view(-1, 1, 1) + torch.tensor(normalize.mean).view(-1, 1, 1)
    elif image.max() > 1.0 or image.min() < 0.0:  # unknown scaling: stretch to the full range
        image = (image - image.min()) / (image.max() - image.min()).clamp(min=1e-6)
    return (image.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
