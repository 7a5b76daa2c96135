"""Shared fixtures: composing configs like the entry points do, and one tiny trained run for the whole session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from seglab.config.compose import compose_config

REPO = Path(__file__).resolve().parents[1]

# The tiny, fast settings every training test starts from (DeepLabV3+ / ResNet-18 on 64x64 synthetic images).
TINY = ["experiment=smoke", "logger=csv"]
# Seconds-long runs for the logger and sweep tests: a 2.5M-parameter model on 32x32 images, two steps per epoch,
# every step logged.
QUICK = [
    "model/backbone=mobilenet_v2",
    "model.decoder.out_channels=32",
    "data.dataset.image_size=[32,32]",
    "data.dataset.lengths={train: 16, val: 8, test: 8}",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.accelerator=cpu",
]
# Two steps on 32x32 images: 8 training images in batches of 4, 4 validation images.
TINY_INSTANCES = [
    "data.dataset.image_size=[32,32]",
    "data.dataset.lengths={train:8,val:4,test:4}",
    "data.batch_size=4",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.accelerator=cpu",
    "logger=csv",
]


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


def run_script(script: str, *args: str, cwd: Path = REPO, env: dict | None = None, timeout: int = 300):
    """Run ``python <script> <args>`` from the repository like a user would; returns the CompletedProcess."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> tuple[Path, dict]:
    """One short real training run on synthetic data, shared by every test that needs a checkpoint."""
    from seglab.commands.train import train

    run_dir = tmp_path_factory.mktemp("trained_run")
    metrics = train(make_cfg(run_dir, *TINY))
    return run_dir, metrics


@pytest.fixture(scope="session")
def panoptic_run(tmp_path_factory) -> tuple[Path, dict]:
    """Two steps of Panoptic-DeepLab on synthetic data, shared by every test that needs an instance checkpoint."""
    from seglab.commands.train import train

    run_dir = tmp_path_factory.mktemp("panoptic_deeplab")
    return run_dir, train(make_cfg(run_dir, "experiment=panoptic_deeplab", "model/backbone=resnet18", *TINY_INSTANCES))
