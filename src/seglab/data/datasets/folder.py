"""Any folder of images and masks with matching stems, classes described by a small YAML file.

    <root>/classes.yaml                       classes: [name, ...]   palette: [[r, g, b], ...] (optional)
    <root>/images/<split>/<stem>.<jpg|png|...>  and  <root>/masks/<split>/<stem>.png      (split sub-folders)
    or  <root>/images/<stem>.*  +  <root>/masks/<stem>.png  +  <root>/<split>.txt (one stem a line)

Masks are index PNGs (grey levels) or palette PNGs holding class ids 0..N-1 and 255 (ignore). With a
``palette`` in ``classes.yaml``, RGB masks are accepted too: each colour is the class it has in the palette.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import yaml

from seglab.data.datasets.base import ImageLabelDataset, match_pairs, require_dir, require_root, require_samples
from seglab.data.io import read_label
from seglab.data.labels import LabelMapper
from seglab.runtime.errors import UserError

CLASSES_FILE = "classes.yaml"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LAYOUT = (
    "expected <root>/classes.yaml, and <root>/images/<split>/ + <root>/masks/<split>/ or <root>/images/ + "
    "<root>/masks/ + <root>/<split>.txt, images and masks with matching stems"
)


def read_classes(path: Path) -> tuple[list[str], list[tuple[int, int, int]] | None]:
    """Class names and optional palette from ``classes.yaml``; a missing or malformed file is a :class:`UserError`."""
    example = "classes: [background, road, car] and optionally palette: [[0, 0, 0], [128, 64, 128], [0, 0, 142]]"
    if not path.is_file():
        raise UserError(f"{path} is missing: the folder dataset reads its class names from it ({example})")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"{path} is not valid YAML: {err}") from None
    names = content.get("classes") if isinstance(content, dict) else None
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise UserError(f"{path} must list the class names under 'classes' ({example})")
    palette = content.get("palette")
    if palette is not None:
        valid = isinstance(palette, list) and all(
            isinstance(c, list) and len(c) == 3 and all(isinstance(v, int) and 0 <= v <= 255 for v in c)
            for c in palette
        )
        if not valid or len(palette) != len(names):
            raise UserError(f"{path}: 'palette' must give one [r, g, b] (0..255) per class, {len(names)} in all")
        if len({tuple(c) for c in palette}) != len(palette):
            raise UserError(f"{path}: 'palette' gives the same colour to two classes")
        palette = [tuple(c) for c in palette]
    return names, palette


def folder_class_names(root: str | None) -> list[str]:
    """Class names of the folder dataset at ``root`` for the config (``${seglab.folder_classes:...}``).

    Empty when the root or its ``classes.yaml`` is missing or malformed: the dataset reports that, with the fix,
    when it is built.
    """
    try:
        return read_classes(Path(root).expanduser() / CLASSES_FILE)[0] if root else []
    except UserError:
        return []


class FolderDataset(ImageLabelDataset):
    """Images and index/palette (or, with a palette, RGB) masks from any folder.

    Args:
        root: the dataset folder (see the module docstring for the layout).
        split: a sub-folder name of ``images/`` and ``masks/``, or the stem of a ``<root>/<split>.txt`` list.
        transforms: joint transforms applied to the sample dict.
        strict_labels: refuse mask values that are not a class id or 255 (else map them to 255 with one warning).
    """

    def __init__(
        self,
        root: str | Path | None,
        split: str = "train",
        transforms: Callable | None = None,
        strict_labels: bool = True,
    ) -> None:
        super().__init__(split, transforms)
        self.root = require_root(root, "the folder dataset", LAYOUT)
        self.class_names, self.palette = read_classes(self.root / CLASSES_FILE)
        self.labels = LabelMapper.identity(len(self.class_names), strict_labels)
        self.samples = self._find_samples()

    def _find_samples(self) -> list[tuple[Path, Path]]:
        image_dir, mask_dir = self.root / "images", self.root / "masks"
        split_file = self.root / f"{self.split}.txt"
        if (image_dir / self.split).is_dir() or (mask_dir / self.split).is_dir():
            image_dir = require_dir(image_dir / self.split, LAYOUT)
            mask_dir = require_dir(mask_dir / self.split, LAYOUT)
            stems = None
        elif split_file.is_file():
            require_dir(image_dir, LAYOUT)
            require_dir(mask_dir, LAYOUT)
            stems = {line.strip() for line in split_file.read_text().splitlines() if line.strip()}
        else:
            raise UserError(
                f"split {self.split!r} not found: neither {image_dir / self.split} nor {split_file} exists; {LAYOUT}"
            )
        images = self._by_stem(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        masks = self._by_stem(p for p in mask_dir.iterdir() if p.suffix.lower() == ".png")
        if stems is not None:
            missing = sorted(stems - images.keys())
            if missing:
                raise UserError(f"{split_file} lists {missing[0]!r} but {image_dir} has no image with that stem")
            images = {stem: images[stem] for stem in stems}
            masks = {stem: path for stem, path in masks.items() if stem in stems}
        where = str(split_file) if stems is not None else f"{image_dir}/*"
        require_samples(list(images) + list(masks), self.split, where, LAYOUT)
        return match_pairs(
            images,
            masks,
            image_for=lambda stem: image_dir / f"{stem}.<{'|'.join(s[1:] for s in IMAGE_SUFFIXES)}>",
            label_for=lambda stem: mask_dir / f"{stem}.png",
        )

    @staticmethod
    def _by_stem(paths: Any) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for path in sorted(paths):
            if path.stem in found:
                raise UserError(f"{found[path.stem]} and {path} have the same stem; keep one file per stem")
            found[path.stem] = path
        return found

    def read_mask(self, label_path: Path) -> np.ndarray:
        raw = read_label(label_path, rgb=self.palette is not None)
        if raw.ndim == 3:
            raw = self._colours_to_classes(raw, label_path)
        return self.labels(raw, label_path)

    def _colours_to_classes(self, rgb: np.ndarray, path: Path) -> np.ndarray:
        """Class ids of an RGB mask through the palette; colours not in it are refused like unknown values."""
        codes = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
        palette_codes = np.array([(r << 16) | (g << 8) | b for r, g, b in self.palette], dtype=np.int32)
        order = np.argsort(palette_codes)
        position = np.searchsorted(palette_codes[order], codes).clip(0, len(order) - 1)
        classes = order[position]
        known = palette_codes[classes] == codes
        if not known.all():
            unknown = np.unique(codes[~known])
            self.labels.refuse([f"rgb({c >> 16}, {(c >> 8) & 255}, {c & 255})" for c in unknown], path)
        return np.where(known, classes, self.labels.ignore_index).astype(np.uint8)
