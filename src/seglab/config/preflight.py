"""Start-up checks: a run's config is checked before any data is read, with one clear message per mistake.

train.py and eval.py call :func:`preflight` first. It refuses (as :class:`~seglab.runtime.errors.UserError`):

- ``data.num_classes`` that differs from the dataset's own class list, ``model.num_classes`` that differs from
  the data's, ``data.class_names`` of another length (the DataModule's check);
- an ``ignore_index`` (data, loss or model) that is also a class id;
- a ``model.backbone.output_stride`` the backbone cannot reach, or an unknown backbone;
- atrous rates (``model.decoder.rates``, ``rate``, ``model.backbone.multi_grid``) that are empty or not positive;
- a loss class-weight vector that is not one weight per class (:func:`seglab.losses.class_weights.check_class_weights`);
- a training crop larger than the padded-image policy allows (:func:`check_crop`).

:func:`check_checkpoint_fits` refuses a checkpoint of another model (preset, backbone) or other classes than the
run's, before anything is built, and :func:`check_weights_fit` one whose weights do not fit the model built (eval.py,
predict.py, export and resuming). The checks reuse the parts' own: the same message whether a mistake is found here
or later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch.nn import Module
from torchvision.transforms import v2

from seglab.config.builders import build_datamodule, check_num_classes, task_class
from seglab.config.compose import group_options, override_key
from seglab.data.labels import check_ignore_index
from seglab.data.transforms import RandomScale, RandomScaleCrop
from seglab.losses.class_weights import check_class_weights
from seglab.models.backbones import check_backbone
from seglab.models.decoders.aspp import check_rates
from seglab.runtime.errors import UserError

BUILD_BACKBONE = "seglab.models.build_backbone"
# Transforms that keep the image size (anything else not handled by check_crop makes the size unknown).
SIZE_PRESERVING = (
    v2.RandomHorizontalFlip, v2.RandomVerticalFlip, v2.ColorJitter, v2.RandomPhotometricDistort, v2.RandomGrayscale,
    v2.GaussianBlur, v2.ToDtype, v2.ToImage, v2.Normalize,
)


def check_optimizer_choice(cfg: DictConfig) -> None:
    """Refuse to train a task with an optimizer that does not suit it (its ``paper_optimizer``, e.g. Panoptic-DeepLab's
    Adam) when the optimizer is train.yaml's default rather than chosen on the command line: a preset never changes
    the ``optimizer=`` group itself, so ``python train.py model=panoptic_deeplab`` would otherwise diverge with SGD.
    Outside a Hydra run (a config composed in Python) the choices are the caller's."""
    paper = getattr(task_class(cfg), "paper_optimizer", None)
    if paper is None or not HydraConfig.initialized():
        return
    hydra = HydraConfig.get()
    choice, (wanted, reason) = hydra.runtime.choices.get("optimizer"), paper
    if choice != wanted and not any(override_key(o) == "optimizer" for o in hydra.overrides.task):
        model = hydra.runtime.choices.get("model")
        experiment = f"experiment={model} (its paper's optimizer and loss) or " if model in group_options("experiment") else ""
        raise UserError(
            f"model={model} trains with optimizer={wanted} ({reason}), not the default optimizer={choice}: add "
            f"{experiment}optimizer={wanted}; optimizer={choice} typed on the command line trains with it anyway"
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


@dataclass(frozen=True)
class ModelIdentity:
    """What a checkpoint must share with the run that loads it: the model preset (the ``model`` option, where
    known), the task and decoder classes, the backbone and the class names."""

    preset: str | None
    task: str | None
    decoder: str | None
    backbone: str | None
    class_names: tuple[str, ...]

    @classmethod
    def of(cls, config: Any, choices: Mapping[str, Any] | None) -> ModelIdentity:
        """The identity of a config (a DictConfig or a checkpoint's plain copy) and its config group choices."""
        def select(key: str) -> Any:
            node = config
            for part in key.split("."):
                node = node.get(part) if isinstance(node, Mapping) else None
            return node

        return cls((choices or {}).get("model"), select("model._target_"), select("model.decoder._target_"),
                   select("model.backbone.name"), tuple(select("data.class_names") or ()))

    def fits(self, other: ModelIdentity) -> bool:
        same_preset = self.preset is None or other.preset is None or self.preset == other.preset
        return same_preset and (self.task, self.decoder, self.backbone, self.class_names) == (
            other.task, other.decoder, other.backbone, other.class_names)

    def __str__(self) -> str:
        model = self.preset or str(self.decoder or self.task).rsplit(".", 1)[-1]
        return f"model={model} / {self.backbone} / {len(self.class_names)} classes ({_short(self.class_names)})"


def check_checkpoint_fits(snapshot: Mapping[str, Any], cfg: DictConfig, choices: Mapping[str, Any] | None,
                          ckpt_path: Any) -> None:
    """The checkpoint (its stored config ``snapshot``) must hold the model ``cfg`` builds (``choices``: the run's
    config group choices) and have been trained on the classes of the run's data."""
    trained, here = ModelIdentity.of(snapshot["config"], snapshot.get("choices")), ModelIdentity.of(cfg, choices)
    if not trained.fits(here):
        raise UserError(
            f"{ckpt_path} does not fit this run: the checkpoint is {trained}; this run is {here}. Give the model and "
            "data settings it was trained with, or a checkpoint of this model and data"
        )


def check_weights_fit(model: Module, state_dict: Mapping[str, Any], ckpt_path: Any) -> None:
    """The checkpoint's weights must have the names and shapes of the model's (what a strict load needs): other
    model settings than the ones it was trained with (e.g. ``model.decoder.out_channels``) are refused here."""
    own = model.state_dict()
    missing = [key for key in own if key not in state_dict]
    unexpected = [key for key in state_dict if key not in own]
    reshaped = [key for key in own if key in state_dict and tuple(state_dict[key].shape) != tuple(own[key].shape)]
    if not (missing or unexpected or reshaped):
        return
    found = []
    if reshaped:
        key = reshaped[0]
        found.append(f"{len(reshaped)} of another shape ({key}: {list(state_dict[key].shape)} in the checkpoint, "
                     f"{list(own[key].shape)} in the model)")
    if missing:
        found.append(f"{len(missing)} missing ({_short(missing, 2)})")
    if unexpected:
        found.append(f"{len(unexpected)} the model does not have ({_short(unexpected, 2)})")
    raise UserError(
        f"{ckpt_path} holds weights that do not fit the model this config builds: {'; '.join(found)}. Give the "
        "model settings it was trained with (its run's .hydra/overrides.yaml lists them)"
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
