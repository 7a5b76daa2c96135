"""Pictures of segmentations for dashboards: side-by-side panels with a colour legend, in the dataset's palette
(:mod:`seglab.viz.palette`), and the confusion matrix. Pure functions on NumPy arrays (HxWx3 uint8 images, HxW
integer label maps)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from seglab.data.transforms import find_normalize
from seglab.viz.palette import Palette, default_palette, overlay

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Legends list every class up to this many; datasets with more (ADE20K's 150) list the classes in the picture.
FULL_LEGEND_CLASSES = 40
TEXT_SIZE = 14


def font(size: int = TEXT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own scalable font (no system fonts needed), at ``size`` pixels."""
    return ImageFont.load_default(size=size)


def legend_classes(class_names: Sequence[str], masks: Sequence[np.ndarray] = ()) -> list[int]:
    """The classes a legend lists: all of them, or for datasets of more than :data:`FULL_LEGEND_CLASSES` classes
    those present in ``masks`` (ignored labels left out)."""
    if len(class_names) <= FULL_LEGEND_CLASSES or not masks:
        return list(range(len(class_names)))
    present = set().union(*(np.unique(m).tolist() for m in masks))
    return [index for index in range(len(class_names)) if index in present]


def legend(class_names: Sequence[str], palette: Palette, width: int, classes: Sequence[int] | None = None) -> np.ndarray:
    """A strip ``width`` pixels wide listing each class's colour swatch and name, in rows (``classes``: the class
    indices to list, default all)."""
    classes = list(range(len(class_names))) if classes is None else list(classes)
    text = font()
    row_height = TEXT_SIZE + 6
    cell = max(row_height * 5, max((int(text.getlength(class_names[i])) for i in classes), default=0) + row_height + 12)
    per_row = max(1, width // cell)
    rows = max(1, -(-len(classes) // per_row))
    strip = Image.new("RGB", (width, rows * row_height + 6), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for slot, index in enumerate(classes):
        x, y = (slot % per_row) * cell + 2, (slot // per_row) * row_height + 3
        swatch = [x, y + 3, x + row_height - 6, y + row_height - 3]
        draw.rectangle(swatch, fill=tuple(int(c) for c in palette[index]), outline=(128, 128, 128))
        draw.text((x + row_height, y + 1), class_names[index], fill=(0, 0, 0), font=text)
    return np.asarray(strip)


def titled(row: np.ndarray, titles: Sequence[str], caption: str = "") -> np.ndarray:
    """``row`` (equal-width columns side by side) under a white band naming each column, ``caption`` first."""
    text = font()
    line = TEXT_SIZE + 6
    lines = [caption] if caption else []
    band = Image.new("RGB", (row.shape[1], line * (len(lines) + 1) + 2), (255, 255, 255))
    draw = ImageDraw.Draw(band)
    for number, words in enumerate(lines):
        draw.text((4, number * line + 2), words, fill=(0, 0, 0), font=text)
    column = row.shape[1] // max(1, len(titles))
    for number, title in enumerate(titles):
        x = number * column + max(2, (column - int(text.getlength(title))) // 2)
        draw.text((x, len(lines) * line + 2), title, fill=(0, 0, 0), font=text)
    return np.concatenate([np.asarray(band), row], axis=0)


def column_title(mask_name: str) -> str:
    return {"ground_truth": "ground truth"}.get(mask_name, mask_name.replace("_", " "))


def panel(
    image: np.ndarray, masks: Mapping[str, np.ndarray], class_names: Sequence[str], palette: Palette | None = None, caption: str = ""
) -> np.ndarray:
    """The image, then each mask (ground truth, prediction, ...) over it, side by side under column titles
    ("input", "ground truth", "prediction") and ``caption``, above a colour legend; ``palette``: the dataset's
    class colours (default: :func:`~seglab.viz.palette.default_palette`)."""
    palette = palette if palette is not None else default_palette(len(class_names))
    row = np.concatenate([image, *(overlay(image, m, palette) for m in masks.values())], axis=1)
    row = titled(row, ["input", *(column_title(name) for name in masks)], caption)
    shown = legend_classes(class_names, list(masks.values()))
    return np.concatenate([row, legend(class_names, palette, row.shape[1], shown)], axis=0)


def confusion_matrix_image(confmat: np.ndarray, class_names: Sequence[str], title: str = "") -> np.ndarray:
    """The confusion matrix (rows: ground truth, columns: prediction) normalised per ground-truth class, as an
    RGB image under ``title`` (e.g. the epoch and step); cells show the fraction of each class's pixels."""
    from matplotlib.figure import Figure

    counts = confmat.astype(np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    size = 2.5 + 0.45 * n
    figure = Figure(figsize=(size + 1, size + 0.4), dpi=80)
    axes = figure.subplots()
    shown = axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(shown, ax=axes, fraction=0.046, pad=0.04, label="fraction of the ground-truth class's pixels")
    axes.set_xticks(range(n), class_names, rotation=90)
    axes.set_yticks(range(n), class_names)
    axes.set_xlabel("prediction")
    axes.set_ylabel("ground truth")
    axes.set_title(title or "confusion matrix", fontsize=11)
    if n <= 20:
        for true in range(n):
            for pred in range(n):
                colour = "white" if rates[true, pred] > 0.5 else "black"
                axes.text(pred, true, f"{rates[true, pred]:.2f}", ha="center", va="center", fontsize=7, color=colour)
    figure.tight_layout()
    return figure_pixels(figure)


def figure_pixels(figure: Figure) -> np.ndarray:
    """A matplotlib figure drawn off-screen (Agg, the user's backend untouched) as an HxWx3 uint8 image."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

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
