"""Shared fixtures: tiny trained runs for the whole session, and one torch thread where threads only cost.

The helpers (config composition, commands, tiny settings, dataset trees, probes) are in ``tests/helpers/``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import TINY, TINY_INSTANCES, make_cfg


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


@pytest.fixture
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy machine waiting threads cost tenfold."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
