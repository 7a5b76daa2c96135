"""Start-up checks: a run's config is checked before any data is read, with one clear message per mistake.

train.py and eval.py call :func:`preflight` first. It refuses (as :class:`~seglab.errors.UserError`):

- ``data.num_classes`` that differs from the dataset's own class list, ``model.num_classes`` that differs from
  the data's, ``data.class_names`` of another length (the DataModule's check);
- an ``ignore_index`` (data, loss or model) that is also a class id;
- a ``model.backbone.output_stride`` the backbone cannot reach, or an unknown backbone;
- atrous rates (``model.decoder.rates``, ``rate``, ``model.backbone.multi_grid``) that are empty or not positive;
- a loss class-weight vector that is not one weight per class (:func:`seglab.class_weights.check_class_weights`);
- a training crop larger than the padded-image policy allows (:func:`check_crop`).

:func:`check_checkpoint_classes` refuses a checkpoint whose classes are not the data's (eval.py, predict.py, export
and resuming). The checks reuse the parts' own: the same message whether a mistake is found here or later.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import lightning as L
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf
from torchvision.transforms import v2

from seglab.builders import build_datamodule, check_num_classes
from seglab.class_weights import check_class_weights
from seglab.data.labels import check_ignore_index
from seglab.data.transforms import RandomScale, RandomScaleCrop
from seglab.errors import UserError
from seglab.models.backbones import check_backbone
from seglab.models.decoders.aspp import check_rates

BUILD_BACKBONE = "seglab.models.build_backbone"
# Transforms that keep the image size (anything else not handled by check_crop makes the size unknown).
SIZE_PRESERVING = (
    v2.RandomHorizontalFlip, v2.RandomVerticalFlip, v2.ColorJitter, v2.RandomPhotometricDistort, v2.RandomGrayscale,
    v2.GaussianBlur, v2.ToDtype, v2.ToImage, v2.Normalize,
)


def preflight(cfg: DictConfig) -> L.LightningDataModule:
    """Check a composed train config; return its DataModule, built but not set up (no data has been read)."""
    check_class_weights(cfg)
    check_dataset_classes(cfg.data)
    datamodule = build_datamodule(cfg)  # checks data.class_names, data.ignore_index and data.palette
    check_num_classes(cfg.model.num_classes, datamodule.num_classes)
    for key, value in _explicit_values(cfg, ("loss", "model"), "ignore_index"):
        check_ignore_index(key, value, datamodule.class_names)
    backbone = cfg.model.get("backbone")
    if isinstance(backbone, DictConfig) and backbone.get("_target_") == BUILD_BACKBONE:
        check_backbone(backbone.name, backbone.get("output_stride", 16), backbone.get("in_channels", 3))
    for key, value in _explicit_values(cfg, ("model",), "rates", "rate", "multi_grid"):
        if value is not None:
            check_rates(value if isinstance(value, (list, ListConfig)) else [value], name=key)
    check_crop(datamodule.train_transforms, _known_image_size(cfg.data))
    return datamodule


def check_dataset_classes(data: DictConfig) -> None:
    """``data.num_classes`` must be the length of the dataset class's own class list, where it has one."""
    target = OmegaConf.select(data, "dataset._target_")
    known = getattr(get_class(target), "class_names", None) if target else None
    if isinstance(known, (tuple, list)) and len(known) != data.num_classes:
        raise UserError(
            f"data.num_classes={data.num_classes} but {target.rsplit('.', 1)[-1]} has {len(known)} classes "
            f"({', '.join(known[:5])}, ...); drop the data.num_classes and data.class_names overrides"
        )


def check_checkpoint_classes(trained: Mapping[str, Any], data: DictConfig, ckpt_path: Any) -> None:
    """The classes a checkpoint was trained on (its stored config's ``data``) must be the data's."""
    trained_names, names = list(trained["class_names"]), list(data.class_names)
    if trained_names != names:
        raise UserError(
            f"{ckpt_path} was trained on {len(trained_names)} classes ({_short(trained_names)}) but the data has "
            f"{len(names)} ({_short(names)}); use it on data with the classes it was trained on, or a checkpoint "
            "trained on this data"
        )


def _short(names: Sequence[str], shown: int = 6) -> str:
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def _explicit_values(cfg: DictConfig, groups: Sequence[str], *keys: str) -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every key named ``keys`` under ``groups``, except interpolations (a value that
    follows another key, e.g. ``${data.ignore_index}``, is checked there)."""

    def walk(node: Any, path: str) -> Iterator[tuple[str, Any]]:
        if not isinstance(node, DictConfig):
            return
        for key in node.keys():
            if OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
                continue
            value = node[key]
            if key in keys:
                yield f"{path}.{key}", OmegaConf.to_container(value) if isinstance(value, ListConfig) else value
            else:
                yield from walk(value, f"{path}.{key}")

    for group in groups:
        yield from walk(cfg.get(group), group)


def _known_image_size(data: DictConfig) -> tuple[int, int] | None:
    """[h, w] of every image of the dataset when it is fixed (synthetic images, Cityscapes), else ``None``."""
    size = OmegaConf.select(data, "dataset.image_size")
    if size is None:
        target = OmegaConf.select(data, "dataset._target_")
        size = getattr(get_class(target), "image_size", None) if target else None
    return (int(size[0]), int(size[1])) if size is not None else None


def check_crop(transforms: Any, image_size: tuple[int, int] | None) -> None:
    """Refuse a training crop that no image the pipeline produces can fill.

    The padded-image policy: a crop may hang over the image (the overhang is padded, images with 0 and masks with
    the ignore index, so it counts in neither loss nor metrics), but some image the pipeline produces must be large
    enough to fill it; otherwise every crop is partly padding, compute spent on ignored pixels. The largest image
    is followed through the pipeline from the dataset's fixed image size (where it has one) and the resize steps
    (their largest scale, or ``RandomResize``'s largest short side); where it cannot be known, the crop is not
    checked.
    """
    size, short = image_size, (min(image_size) if image_size else None)
    source = f"{size[0]}x{size[1]} images" if size else "the images"
    for transform in _flatten(transforms):
        if isinstance(transform, (RandomScale, RandomScaleCrop)):
            scale = transform.scale_range[1]
            size = (round(size[0] * scale), round(size[1] * scale)) if size else None
            short = round(short * scale) if short else None
            source += f" scaled by at most {scale:g}"
        elif isinstance(transform, v2.RandomResize):
            short = transform.max_size - 1  # the short side is drawn from [min_size, max_size)
            size = (round(size[0] * short / min(size)), round(size[1] * short / min(size))) if size else None
            source += f" resized to a short side of at most {short} px"
        elif isinstance(transform, SIZE_PRESERVING):
            continue
        elif not isinstance(transform, v2.RandomCrop):
            size = short = None  # a transform whose effect on the size is not known here
            continue
        if isinstance(transform, (RandomScaleCrop, v2.RandomCrop)):
            crop = (int(transform.size[0]), int(transform.size[1]))
            if (size and (crop[0] > size[0] or crop[1] > size[1])) or (short and min(crop) > short):
                largest = f"{size[0]}x{size[1]}" if size else f"a short side of {short} px"
                raise UserError(
                    f"the training crop {crop[0]}x{crop[1]} (data.crop_size) is larger than any image the training "
                    f"transforms produce ({source}: at most {largest}), so every crop would be partly padding, "
                    "whose pixels are ignored; lower data.crop_size or allow larger scales"
                )
            size, short = crop, min(crop)
            source = f"{crop[0]}x{crop[1]} crops"


def _flatten(transform: Any) -> Iterator[Any]:
    if isinstance(transform, v2.Compose):
        for inner in transform.transforms:
            yield from _flatten(inner)
    elif transform is not None:
        yield transform
