"""Writing predicted class maps: Cityscapes label-id PNGs, train-id PNGs, colour masks beside overlays.

Formats (``export.format`` of eval.py):

- ``cityscapes``: official Cityscapes label ids (not train ids) in ``<dir>/<city>/<name>_leftImg8bit.png``, the
  layout the test server and cityscapesScripts' evaluation accept;
- ``png``: class indices (train ids) as a greyscale PNG, ``<dir>/<name>.png``;
- ``color``: the palette colour mask and the image with the mask blended over it, side by side, above a
  legend of the classes, ``<dir>/<name>.png``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from seglab.data.datasets.cityscapes_labels import train_id_to_id_lut
from seglab.runtime.errors import UserError
from seglab.viz.palette import Palette, colorize, overlay

EXPORT_FORMATS = ("cityscapes", "png", "color")
# <city>_<sequence>_<frame>, e.g. frankfurt_000000_000294
CITYSCAPES_NAME = re.compile(r"^(?P<city>[^_]+)_\d+_\d+$")
TRAIN_ID_TO_ID = train_id_to_id_lut()
# The narrowest legend under a colour file: a smaller image is padded with white on the right.
MIN_LEGEND_WIDTH = 256


def save_classes(classes: np.ndarray, path: Path) -> Path:
    """Class indices (HxW, < 256) as a single-channel PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(classes.astype(np.uint8), mode="L").save(path)
    return path


def save_cityscapes(classes: np.ndarray, name: str, out_dir: Path) -> Path:
    """Cityscapes train ids (HxW) as official label ids in ``<out_dir>/<city>/<name>_leftImg8bit.png``."""
    match = CITYSCAPES_NAME.match(name)
    if match is None:
        raise UserError(
            f"export.format=cityscapes needs Cityscapes image names (<city>_<seq>_<frame>), not {name!r}; "
            "use export.format=png or color for other datasets"
        )
    return save_classes(TRAIN_ID_TO_ID[classes.astype(np.uint8)], out_dir / match["city"] / f"{name}_leftImg8bit.png")


def save_color(
    classes: np.ndarray, image: np.ndarray, palette: Palette, path: Path, alpha: float = 0.5,
    class_names: Sequence[str] | None = None,
) -> Path:  # fmt: skip
    """The colour mask of ``classes`` (HxW) and its overlay on ``image`` (HxWx3 uint8), side by side, above a legend
    of the classes' colours and names when ``class_names`` are given (every class, or for datasets of many classes
    those in the prediction: :func:`seglab.viz.panels.legend_classes`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    picture = np.concatenate([colorize(classes, palette), overlay(image, classes, palette, alpha)], axis=1)
    if class_names:
        from seglab.viz.panels import legend, legend_classes

        width = max(picture.shape[1], MIN_LEGEND_WIDTH)  # names stay readable under a small image
        strip = legend(class_names, palette, width, legend_classes(class_names, [classes]))
        padded = np.full((picture.shape[0], width, 3), 255, dtype=np.uint8)
        padded[:, : picture.shape[1]] = picture
        picture = np.concatenate([padded, strip], axis=0)
    Image.fromarray(picture).save(path)
    return path


def write_prediction(
    export_format: str, classes: np.ndarray, name: str, out_dir: Path, image: np.ndarray | None = None,
    palette: Palette = (), class_names: Sequence[str] | None = None,
) -> Path:  # fmt: skip
    """Write one predicted class map in ``export_format`` (see the module docstring); returns the file written."""
    if export_format == "cityscapes":
        return save_cityscapes(classes, name, out_dir)
    if export_format == "png":
        return save_classes(classes, out_dir / f"{name}.png")
    if export_format == "color":
        if image is None:
            raise ValueError("the color format needs the image")
        return save_color(classes, image, palette, out_dir / f"{name}.png", class_names=class_names)
    raise ValueError(f"unknown prediction format {export_format!r}; expected one of {EXPORT_FORMATS}")
