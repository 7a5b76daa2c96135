"""Composing a config as the entry points do, with the Hydra runtime of a real run."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from seglab.config.compose import compose_config


def make_cfg(output_dir: Path, *overrides: str, config_name: str = "train") -> DictConfig:
    """Compose a config as ``python train.py <overrides>`` would, writing its run into ``output_dir``.

    The Hydra runtime is set as in a real run, so the overrides are recorded in checkpoints.
    """
    cfg = compose_config(config_name, overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
        cfg.paths.output_dir = str(output_dir)
    return cfg
