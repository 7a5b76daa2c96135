"""logger=wandb without credentials runs offline, writes the run under the run directory and says how to sync."""

from __future__ import annotations

import logging

from seglab.train import train
from tests.conftest import make_cfg


def test_wandb_runs_offline_without_credentials(tmp_path, monkeypatch, caplog):
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc, so no stored login
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_cfg(
        tmp_path / "run",
        "logger=wandb",
        "model/backbone=resnet18",
        "data.dataset.image_size=[32,32]",
        "data.dataset.lengths={train: 8, val: 8, test: 8}",
        "trainer.max_epochs=1",
    )
    with caplog.at_level(logging.INFO):
        train(cfg)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    assert f"wandb sync {runs[0]}" in caplog.text
