"""Rebuilding a trained model from its checkpoint alone (eval.py, predict.py, ``python -m seglab export``).

:class:`~seglab.checkpointing.config_snapshot.ConfigSnapshot` stores the training run's config and overrides in every checkpoint;
the training config is composed again from those overrides, then the command's own overrides on top (as typed,
see :mod:`seglab.commands.entry`): any key of the checkpoint's preset can be set. The network itself is the
checkpoint's: re-choosing the model preset, backbone or experiment is refused (it would also reset the training
run's model options), and an override that changes the network's shape is one clear error. Files are read through
:func:`seglab.checkpointing.io.load_checkpoint`, which runs no code from them unless ``trusted=true``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import lightning as L
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict

from seglab.checkpointing.config_snapshot import CHECKPOINT_KEY
from seglab.checkpointing.io import load_checkpoint
from seglab.commands.entry import as_typed
from seglab.config.builders import build_datamodule, build_model
from seglab.config.compose import compose_config, merge_overrides, override_key, quote_override_value
from seglab.config.preflight import check_checkpoint_fits, check_weights_fit
from seglab.config.validation import check_config
from seglab.losses.class_weights import use_trained_class_weights
from seglab.runtime.errors import UserError
from seglab.tracking.redaction import redact

# A rebuilt run sees the whole split, whatever debug settings the training run had, and never downloads weights.
RESTORE_OVERRIDES = [
    "++trainer.fast_dev_run=false",
    "++trainer.limit_val_batches=1.0",
    "++trainer.limit_test_batches=1.0",
    "model.backbone.weights=null",  # the checkpoint holds the weights: never download
]


# Options of a training run's command line that a rebuilt run does not inherit: trusting a file is the caller's call.
NOT_INHERITED = ("ckpt_path", "debug", "trusted")
# Config groups that choose the network, which the checkpoint's weights fix.
NETWORK_GROUPS = ("model", "experiment")
# The rebuilt run's config, beside the command's own .hydra/ (train.py writes its run's config under this name).
REBUILT_CONFIG = "resolved_config.yaml"


def read_checkpoint(ckpt_path: Path, trusted: bool = False) -> dict[str, Any]:
    """The checkpoint's contents (memory-mapped); a clear error for a missing file or a foreign checkpoint."""
    checkpoint = load_checkpoint(ckpt_path, trusted=trusted, mmap=True)
    if CHECKPOINT_KEY not in checkpoint:
        raise UserError(f"{ckpt_path} was not written by seglab's train.py: it holds no training config")
    return checkpoint


def training_config(
    ckpt_path: Path,
    command_overrides: Sequence[str],
    command_keys: Sequence[str],
    mode: str | None = None,
    trusted: bool = False,
) -> DictConfig:
    """Compose the training config again: the checkpoint's overrides, then the command's own.

    Args:
        ckpt_path: a checkpoint written by train.py.
        command_overrides: the command line of eval.py / predict.py / export (see :func:`seglab.config.compose.run_overrides`).
        command_keys: top-level keys of the command's own config, which are not part of the training config.
        mode: an option of the ``inference`` config group (``whole``, ``slide``, ``tta``) to use instead of the
            training run's (``eval.mode``, ``predict.mode``); it must agree with an ``inference=...`` override.
        trusted: load the checkpoint whatever it holds (the command's ``trusted`` option).

    The checkpoint must hold the model the composed config builds, trained on the classes of its data.
    """
    snapshot = read_checkpoint(ckpt_path, trusted)[CHECKPOINT_KEY]
    base = [o for o in snapshot["overrides"] if override_key(o) not in NOT_INHERITED]
    trained_root = snapshot["config"]["data"].get("root")
    if trained_root is not None:  # the data is where training found it, even if that came from the environment
        base.append(f"data.root={quote_override_value(trained_root)}")
    user = [o for o in as_typed(command_overrides) if override_key(o).split(".")[0] not in command_keys]
    for override in user:
        if override_key(override).split("/")[0] in NETWORK_GROUPS and "." not in override_key(override):
            raise UserError(
                f"{override} would choose another network than the one {ckpt_path} holds weights for; a command "
                "that uses a checkpoint keeps the model it was trained with: override single keys of it instead "
                "(e.g. model.center_threshold=0.0)"
            )
    chosen = [o.split("=", 1)[1] for o in user if override_key(o) == "inference"]
    if mode is not None and chosen and chosen[-1] != mode:
        raise UserError(f"the inference mode {mode!r} and inference={chosen[-1]} disagree; give the mode once")
    if mode is not None and not chosen:
        user.insert(0, f"inference={mode}")
    try:
        cfg = compose_config("train", merge_overrides(base + RESTORE_OVERRIDES, user), return_hydra_config=True)
    except HydraException as err:
        reason = " ".join(str(err).split())
        raise UserError(f"the overrides do not apply to the config {ckpt_path} was trained with: {reason}") from None
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    check_config(cfg)
    use_trained_class_weights(cfg, snapshot["config"])  # loss.class_weights=auto: the weights training used
    check_checkpoint_fits(snapshot, cfg, choices, ckpt_path)
    return cfg


def save_rebuilt_config(train_cfg: DictConfig, run_dir: Path) -> Path:
    """Write the config that rebuilt the model (the checkpoint's, with the command's overrides) as
    ``<run_dir>/resolved_config.yaml``, secrets masked; the command's own ``.hydra/config.yaml`` shows the default
    presets instead (see :mod:`seglab.commands.entry`)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / REBUILT_CONFIG
    path.write_text(OmegaConf.to_yaml(redact(OmegaConf.to_container(train_cfg, resolve=True))))
    return path


def load_trained_model(ckpt_path: Path, train_cfg: DictConfig) -> tuple[L.LightningDataModule, L.LightningModule]:
    """The data module (not set up: no data is read) and the model with the checkpoint's weights, in eval mode."""
    datamodule = build_datamodule(train_cfg)
    model = build_model(train_cfg, datamodule)
    state_dict = read_checkpoint(ckpt_path, train_cfg.get("trusted", False))["state_dict"]
    check_weights_fit(model, state_dict, ckpt_path)
    model.load_state_dict(state_dict)
    return datamodule, model.eval()
