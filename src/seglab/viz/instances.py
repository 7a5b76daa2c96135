"""Instance overlays for dashboards and prediction outputs: each instance in its own colour, with its class and
score. A pure function on arrays, usable by predict.py, the validation-media callback and notebooks."""

from __future__ import annotations

import colorsys
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torchvision.ops import masks_to_boxes
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

GOLDEN_RATIO = 0.618033988749895


def instance_colours(count: int) -> list[tuple[int, int, int]]:
    """``count`` RGB colours whose hues step by the golden ratio, so neighbouring indices differ strongly."""
    colours = []
    for index in range(count):
        r, g, b = colorsys.hsv_to_rgb((index * GOLDEN_RATIO) % 1.0, 0.8, 1.0)
        colours.append((round(r * 255), round(g * 255), round(b * 255)))
    return colours


def draw_instances(
    image: np.ndarray,
    instances: Mapping[str, Any],
    class_names: Sequence[str] | None = None,
    alpha: float = 0.5,
) -> np.ndarray:
    """The image (H, W, 3) uint8 with every instance blended in its own colour, boxed and captioned
    ``<class> <score>``.

    Args:
        image: the RGB image, (H, W, 3) uint8.
        instances: ``masks`` (K, H, W) bool, ``labels`` (K,) class ids and, for predictions, ``scores`` (K,)
            (a prediction of :class:`~seglab.tasks.instance.InstanceSegmentationModule` or a data target).
        class_names: names for the captions (default: the class ids).
        alpha: opacity of the masks.

    Returns:
        An (H, W, 3) uint8 array; the image itself is not changed.
    """
    masks = _cpu(instances["masks"]).bool()
    keep = masks.flatten(1).any(dim=1) if len(masks) else torch.zeros(0, dtype=torch.bool)  # boxes need pixels
    if not keep.any():
        return np.array(image, copy=True)
    masks = masks[keep]
    labels = _cpu(instances["labels"])[keep].tolist()
    scores = _cpu(instances["scores"])[keep].tolist() if instances.get("scores") is not None else [None] * len(labels)
    names = [class_names[label] if class_names is not None else str(label) for label in labels]
    captions = [name if score is None else f"{name} {score:.2f}" for name, score in zip(names, scores)]
    colours = instance_colours(len(masks))
    canvas = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    canvas = draw_segmentation_masks(canvas, masks, alpha=alpha, colors=colours)
    canvas = draw_bounding_boxes(canvas, masks_to_boxes(masks), labels=captions, colors=colours, width=1)
    return canvas.permute(1, 2, 0).numpy()


def _cpu(values: Any) -> torch.Tensor:
    return values.detach().cpu() if torch.is_tensor(values) else torch.as_tensor(np.asarray(values))
