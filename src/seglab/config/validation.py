"""Every config value is checked before anything is built: a table of rules keyed by dotted config path.

:func:`training_rules` covers the training config (which eval.py, predict.py, the export and the report compose
too); each command adds the rules of its own keys (``eval.split``, ``predict.device``, ``format``, ...) and calls
:func:`check_config` first. A key matches a pattern where ``*`` stands for any part of one key
(``trainer.limit_*_batches``, ``loss.terms.*.gamma``); keys the table does not name, and values that follow another
key (``${data.crop_size}``, checked there), are not checked here. Checks that need more than the value itself
(a backbone's output strides, class counts, crops against image sizes) are :mod:`seglab.config.preflight`'s.

Besides the values, :func:`check_config` refuses a required value left out (``???``), an interpolation that does not
resolve (``optimizer.lr=${lr}``), and a config group given a value like a key (``model.backbone=resnet50`` instead of
``model/backbone=resnet50``). Everything wrong is reported at once, as one line:
``optimizer.lr=-1: must be a number > 0; data.batch_size=abc: must be an integer >= 1`` (in the config's order).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator, Mapping

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from seglab.config.compose import group_options
from seglab.config.value_rules import (
    FLAG, MAPPING, PATH, Rule, exactly, integer, number, one_of, optional, pair, sequence, show,
)
from seglab.runtime.errors import UserError, user_error_cause

SIZE = pair(integer(1), "[height, width]")
PROBABILITY = number(0, 1)
NO_LIMIT = exactly(-1, "no limit")
# Lightning's precision flags (its aliases 16, 32, 64 and bf16 included).
PRECISIONS = ("32-true", "16-mixed", "bf16-mixed", "16-true", "bf16-true", "64-true", "transformer-engine",
              "transformer-engine-float16", "64", "32", "16", "bf16")
# A whole number of batches (int), or a fraction of them (float).
BATCHES = integer(0) | number(0, 1)
# Lightning's devices as text: "0,1" (those GPUs), "2" (two of them).
DEVICE_IDS = Rule(("device indices as text, e.g. '0,1'",),
                  lambda v: isinstance(v, str) and re.fullmatch(r"\d+(,\d+)*,?", v) is not None)
# A torch device name: auto, cpu, cuda, cuda:1, mps.
DEVICE = Rule(("auto, cpu, cuda, cuda:<index> or mps",),
              lambda v: isinstance(v, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None)

LOSS_RULES: dict[str, Rule] = {
    "ignore_index": integer(),
    "label_smoothing": PROBABILITY,
    "thresh": optional(PROBABILITY),
    "min_kept": integer(0),
    "top_k_percent": optional(number(above=0, maximum=1)),
    "gamma": number(0),
    "alpha": PROBABILITY,
    "beta": PROBABILITY,
    "smooth": number(0),
    "log_loss": FLAG,
    "per_image": FLAG,
    "classes": one_of("present", "all"),
}

@lru_cache(maxsize=None)
def training_rules() -> dict[str, Rule]:
    """The rules of the training config's keys. A function, built once on first use: the trainer rules read
    Lightning's registries of accelerators and strategies, and importing Lightning (with torch) takes seconds that
    ``train.py --help`` should not spend."""
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    from seglab.inference.crf import METHODS as CRF_METHODS
    from seglab.inference.crf import NORMALIZATIONS as CRF_NORMALIZATIONS
    from seglab.losses.balancing import METHODS as CLASS_WEIGHT_METHODS

    return {
        # The run.
        "seed": optional(integer(0, 2**32 - 1)),
        "ckpt_path": optional(PATH),
        "trusted": FLAG,
        "test": FLAG,
        "print_config": FLAG,
        "auto_class_weights": one_of(*CLASS_WEIGHT_METHODS),
        "paths.log_dir": PATH,
        "paths.output_dir": PATH,
        # Data.
        "data.root": optional(PATH),
        "data.num_classes": integer(1),
        "data.ignore_index": integer(),
        "data.batch_size": integer(1),
        "data.val_batch_size": optional(integer(1)),
        "data.num_workers": integer(0),
        "data.crop_size": SIZE,
        "data.strict_labels": FLAG,
        "data.return_instances": optional(FLAG),
        "data.pin_memory": optional(FLAG),
        "data.persistent_workers": FLAG,
        "data.dataset.image_size": SIZE,
        "data.dataset.lengths.*": integer(0),
        "data.dataset.num_objects": pair(integer(0), "[fewest, most]"),
        # Trainer.
        "trainer.accelerator": one_of("auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())) | MAPPING,
        "trainer.strategy": one_of("auto", *StrategyRegistry.available_strategies()) | MAPPING,
        "trainer.devices": integer(1) | exactly(-1, "every device") | one_of("auto") | DEVICE_IDS | sequence(integer(0)),
        "trainer.num_nodes": integer(1),
        "trainer.precision": one_of(*PRECISIONS),
        "trainer.max_epochs": optional(integer(1) | NO_LIMIT),
        "trainer.max_steps": integer(1) | NO_LIMIT,
        "trainer.min_epochs": optional(integer(0)),
        "trainer.min_steps": optional(integer(0)),
        "trainer.check_val_every_n_epoch": optional(integer(1)),
        "trainer.val_check_interval": optional(integer(1) | number(above=0, maximum=1)),
        "trainer.log_every_n_steps": integer(0),
        "trainer.gradient_clip_val": optional(number(0)),
        "trainer.gradient_clip_algorithm": optional(one_of("norm", "value")),
        "trainer.accumulate_grad_batches": integer(1),
        "trainer.num_sanity_val_steps": integer(-1),
        "trainer.deterministic": optional(FLAG | one_of("warn")),
        "trainer.benchmark": optional(FLAG),
        "trainer.limit_*_batches": optional(BATCHES),
        "trainer.overfit_batches": BATCHES,
        "trainer.fast_dev_run": FLAG | integer(0),
        "trainer.sync_batchnorm": FLAG,
        "trainer.skip_nonfinite": FLAG,
        # Optimizer and learning-rate schedule.
        "optimizer.lr": number(above=0),
        "optimizer.weight_decay": number(0),
        "optimizer.momentum": PROBABILITY,
        "optimizer.dampening": PROBABILITY,
        "optimizer.nesterov": FLAG,
        "optimizer.betas": pair(number(0, below=1), "[beta1, beta2]"),
        "optimizer.eps": number(above=0),
        "optimizer.amsgrad": FLAG,
        "scheduler.power": number(0),
        "scheduler.min_lr": number(0),
        "scheduler.warmup_steps": integer(0),
        "scheduler.warmup_ratio": PROBABILITY,
        # Boundary metrics and the dense CRF (the postprocess group).
        "metrics.trimap_widths": sequence(integer(1)) | exactly([], "none"),
        "metrics.boundary_dilation_ratio": optional(number(above=0, below=1)),
        "postprocess.iterations": integer(1),
        "postprocess.w1": number(0),
        "postprocess.w2": number(0),
        "postprocess.theta_*": number(above=0),
        "postprocess.normalization": one_of(*CRF_NORMALIZATIONS),
        "postprocess.method": one_of(*CRF_METHODS),
        "postprocess.exact_max_pixels": integer(0),
        # Model (decoder keys also for Panoptic-DeepLab's instance_decoder).
        "model.num_classes": integer(1),
        "model.backbone_lr_mult": number(0),
        "model.classifier_dropout": PROBABILITY,
        "model.aux_weight": optional(number(0)),
        "model.channels_last": FLAG,
        "model.compile": FLAG | MAPPING,
        "model.backbone.weights": optional(PATH),
        "model.backbone.in_channels": integer(1),
        "model.*decoder.out_channels": optional(integer(1)),
        "model.*decoder.low_level_channels": integer(1),
        "model.*decoder.channels": integer(1),
        "model.*decoder.dropout": PROBABILITY,
        "model.*decoder.aspp_dropout": PROBABILITY,
        "model.*decoder.separable": FLAG,
        "model.*decoder.image_pooling": FLAG,
        "model.*decoder.levels": sequence(integer(1)),
        "model.*decoder.pool": one_of("avg", "max"),
        "model.center_sigma": number(above=0),
        "model.small_instance_area": integer(0),
        "model.*_weight": number(0),
        "model.center_threshold": PROBABILITY,
        "model.nms_kernel": integer(1),
        "model.top_k": integer(1),
        "model.stuff_area": integer(0),
        "model.fpn_channels": integer(1),
        "model.min_size": optional(integer(1)),
        "model.max_size": optional(integer(1)),
        "model.anchor_sizes": sequence(integer(1)),
        "model.detections_per_image": integer(1),
        "model.mask_threshold": PROBABILITY,
        # Loss (a loss of its own, or a term of a combined one).
        **{f"{prefix}.{key}": rule for prefix in ("loss", "loss.terms.*") for key, rule in LOSS_RULES.items()},
        "loss.weights": sequence(number(0)),
        # Inference.
        "inference.crop_size": SIZE,
        "inference.stride": optional(SIZE),
        "inference.scales": sequence(number(above=0)),
        "inference.flip": FLAG,
        # Callbacks and loggers.
        "callbacks.model_checkpoint.every_n_train_steps": optional(integer(1)),
        "callbacks.model_checkpoint.every_n_epochs": optional(integer(0)),
        "callbacks.model_checkpoint.save_top_k": integer(-1),
        "callbacks.model_checkpoint.mode": one_of("min", "max"),
        "callbacks.model_checkpoint.save_last": optional(FLAG | one_of("link")),
        "callbacks.model_checkpoint.dirpath": optional(PATH),
        "callbacks.model_summary.max_depth": integer(-1),
        "callbacks.validation_media.num_images": integer(0),
        "callbacks.validation_media.max_size": integer(1),
        "callbacks.validation_media.media_dir": optional(PATH),
        "callbacks.validation_media.curves": FLAG,
        "callbacks.ema.decay": PROBABILITY,
        "callbacks.ema.update_every_n_steps": integer(1),
        "callbacks.ema.update_starting_at_step": optional(integer(0)),
        "logger.*.save_dir": optional(PATH),
        "logger.*.log_model": FLAG | one_of("all"),
        "logger.wandb.offline": optional(FLAG),
    }

# Config groups whose option is a config node at the same key (model/backbone -> model.backbone).
NODE_GROUPS = ("data", "model", "model/backbone", "model/decoder", "loss", "optimizer", "scheduler", "trainer",
               "inference", "paths")


def inference_modes() -> Rule:
    """An option of the inference group (whole, slide, tta): eval.mode and predict.mode."""
    return one_of(*group_options("inference"))


def check_config(cfg: DictConfig, *command_rules: Mapping[str, Rule]) -> None:
    """Refuse (one :class:`UserError` listing every mistake) a config with a value that breaks its rule in
    :func:`training_rules` or ``command_rules``, a required value left out, an interpolation that does not resolve,
    or a config group set like a key."""
    rules = [(_compiled(pattern), rule) for table in (training_rules(), *command_rules) for pattern, rule in table.items()]
    problems = [*_group_values(cfg)]
    for key, node, name in _entries(cfg):
        if OmegaConf.is_missing(node, name):
            problems.append(f"{key} is required: give {key}=<value>")
            continue
        try:
            value = node[name]
        except OmegaConfBaseException as err:
            if (cause := user_error_cause(err)) is not None:
                raise cause from None
            if not HydraConfig.initialized():
                continue  # composed from Python: ${hydra:...} values cannot resolve yet, nor those that follow them
            raw = OmegaConf.to_container(node, resolve=False)[name]
            problems.append(f"{key}={show(raw)}: {str(err).splitlines()[0]}")
            continue
        if OmegaConf.is_interpolation(node, name):
            continue  # the value another key gave it is checked there
        rule = next((rule for pattern, rule in rules if pattern.fullmatch(key)), None)
        if rule is None:
            continue
        plain = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
        if not rule(plain):
            problems.append(f"{key}={show(plain)}: must be {rule.allowed}")
    if problems:
        raise UserError("; ".join(dict.fromkeys(problems)))


def _entries(cfg: DictConfig) -> Iterator[tuple[str, DictConfig, str]]:
    """``(dotted key, parent node, name)`` of every value of ``cfg``, nodes included; the nodes that follow
    another key are not entered (their values are checked where they come from)."""

    def walk(node: DictConfig, prefix: str) -> Iterator[tuple[str, DictConfig, str]]:
        for name in node.keys():
            key = f"{prefix}{name}"
            yield key, node, name
            child = node._get_node(name)
            if isinstance(child, DictConfig) and not OmegaConf.is_interpolation(node, name) and not child._is_none():
                yield from walk(child, f"{key}.")

    yield from walk(cfg, "")


def _group_values(cfg: DictConfig) -> Iterator[str]:
    """A plain value where a config group's node belongs: ``model.backbone=resnet50`` for ``model/backbone=...``."""
    for group in NODE_GROUPS:
        key = group.replace("/", ".")
        value = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
        if value is not None and not isinstance(value, DictConfig):
            options = group_options(group)
            yield (f"{key}={show(value)}: {key} is a config group, chosen with {group}=<option> (one of "
                   f"{', '.join(options)}), e.g. {group}={value if str(value) in options else options[0]}")


@lru_cache(maxsize=None)
def _compiled(pattern: str) -> re.Pattern[str]:
    """A rule's key pattern as a regular expression: ``*`` is any part of one key."""
    return re.compile(re.escape(pattern).replace(r"\*", r"[^.]*"))
