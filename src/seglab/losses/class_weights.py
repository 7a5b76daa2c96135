"""``class_weights`` in the loss config: checked before any data is loaded; ``auto`` computed from the training labels.

Every node under ``loss`` with a ``class_weights`` key counts: ``loss.class_weights`` and, for combinations,
``loss.terms.<name>.class_weights``. ``auto`` becomes a list computed once by the method ``auto_class_weights``
(median or inverse frequency) from the training split's pixel counts, which are cached in
``<data.root>/.seglab_cache/`` (or, for data without a writable root such as the synthetic set, in
``$XDG_CACHE_HOME/seglab/``, by default ``~/.cache/seglab/``). The list replaces ``auto`` in the config before
the model is built, so the resolved config and checkpoints record the weights that were used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

import lightning as L
from omegaconf import DictConfig, ListConfig, OmegaConf

from seglab.data.label_stats import cached_label_counts
from seglab.losses.balancing import METHODS, balanced_class_weights
from seglab.runtime.errors import UserError

log = logging.getLogger(__name__)

AUTO = "auto"


def class_weight_nodes(node: Any, path: str = "loss") -> Iterator[tuple[str, DictConfig]]:
    """Every config node under ``node`` (itself included) that has a ``class_weights`` key, with its path."""
    if not isinstance(node, DictConfig):
        return
    if "class_weights" in node:
        yield path, node
    for key, child in node.items_ex(resolve=False):
        yield from class_weight_nodes(child, f"{path}.{key}")


def check_class_weights(cfg: DictConfig) -> None:
    """Refuse class weights that are not one non-negative number per class (or ``auto`` / ``null``)."""
    num_classes = cfg.data.num_classes
    classes = ", ".join(map(str, cfg.data.class_names))
    wants_auto = False
    for path, node in class_weight_nodes(cfg.loss):
        key, weights = f"{path}.class_weights", node.class_weights
        if weights is None:
            continue
        if weights == AUTO:
            wants_auto = True
            continue
        if not isinstance(weights, (ListConfig, list, tuple)):
            raise UserError(f"{key}={weights!r}: expected a list of {num_classes} numbers (one per class), auto or null")
        if len(weights) != num_classes:
            raise UserError(
                f"{key} has {len(weights)} entries but the data has {num_classes} classes (data.num_classes: "
                f"{classes}); give one weight per class, or {key}=auto"
            )
        if not all(_is_weight(w) for w in weights) or not any(weights):
            raise UserError(f"{key}={list(weights)}: weights must be finite numbers >= 0, not all 0")
    if wants_auto and cfg.get("auto_class_weights") not in METHODS:
        raise UserError(f"auto_class_weights={cfg.get('auto_class_weights')!r}: use one of {', '.join(METHODS)}")


def _is_weight(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


def label_counts_cache_file(cfg: DictConfig) -> Path:
    """Where the training split's pixel counts are cached: named by a hash of the dataset's config."""
    data = cfg.data
    identity = {
        "dataset": OmegaConf.to_container(data.dataset, resolve=True),
        "split": data.train_split,
        "num_classes": data.num_classes,
        "ignore_index": data.ignore_index,
    }
    digest = hashlib.sha1(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    name = f"label_counts_{data.train_split}_{digest}.json"
    root = Path(data.root).expanduser() if data.get("root") else None
    if root is not None and os.access(root, os.W_OK):
        return root / ".seglab_cache" / name
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seglab" / name


def resolve_auto_class_weights(cfg: DictConfig, datamodule: L.LightningDataModule) -> dict[str, float]:
    """Replace every ``class_weights: auto`` in ``cfg.loss`` by weights from the training labels.

    Returns the weights by name (``class_weights/<class>``) for the experiment loggers, or ``{}`` when no
    loss asked for ``auto``.
    """
    auto_nodes = [node for _, node in class_weight_nodes(cfg.loss) if node.class_weights == AUTO]
    if not auto_nodes:
        return {}
    data, method = cfg.data, cfg.auto_class_weights
    dataset = datamodule.dataset(split=datamodule.splits["train"], transforms=None)
    counts = cached_label_counts(
        dataset, data.num_classes, data.ignore_index, label_counts_cache_file(cfg), data.get("num_workers", 0)
    )
    if counts.pixels.sum() == 0:
        raise UserError(
            f"loss.class_weights=auto: the {data.train_split} split has no labelled pixel (every pixel is "
            f"data.ignore_index={data.ignore_index}); give the weights as a list instead"
        )
    weights = [round(float(w), 6) for w in balanced_class_weights(method, counts.pixels, counts.image_pixels)]
    names = list(data.class_names)
    absent = [name for name, n in zip(names, counts.pixels) if n == 0]
    if absent:
        log.warning("No %s pixel is labelled %s: weight 0", data.train_split, ", ".join(absent))
    log.info("loss.class_weights=auto (%s, %d %s images):\n%s", method, counts.num_images, data.train_split,
             _weights_table(names, counts.pixels / counts.pixels.sum(), weights))
    for node in auto_nodes:
        node.class_weights = weights
    return {f"class_weights/{name}": weight for name, weight in zip(names, weights)}


def _weights_table(names: list[str], shares: Any, weights: list[float]) -> str:
    width = max(len(name) for name in [*names, "class"])
    lines = [f"{'class':<{width}}  {'pixels':>8}  {'weight':>8}"]
    lines += [f"{name:<{width}}  {share:8.2%}  {weight:8.4f}" for name, share, weight in zip(names, shares, weights)]
    return "\n".join(lines)


def use_trained_class_weights(cfg: DictConfig, trained_config: Mapping[str, Any]) -> None:
    """Put the weights a training run resolved ``auto`` to (its stored config) back in place of ``auto``."""
    trained = OmegaConf.create(dict(trained_config))
    for path, node in class_weight_nodes(cfg.loss):
        if node.class_weights == AUTO:
            node.class_weights = OmegaConf.select(trained, f"{path}.class_weights")
