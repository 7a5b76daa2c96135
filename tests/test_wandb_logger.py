"""W&B offline: the run holds the flattened config, the metrics, the media and the checkpoints, keeps its id when
resumed, and nothing secret; logger=many feeds TensorBoard and CSV from the same run."""

from __future__ import annotations

import json
import logging

import pytest
import torch
import wandb

from seglab.commands.train import train

from tests.helpers import QUICK, make_cfg
from tests.helpers.wandb_records import OfflineRun

# Two epochs, so that every dashboard item is logged more than once.
FAST = [*QUICK, "trainer.max_epochs=2"]
ENV_SECRETS = {"WANDB_API_KEY": "wandb-key-" + "0123456789" * 4, "SEGLAB_TEST_API_KEY": "env-secret-0123456789"}
CONFIG_SECRET = "cfg-secret-0123456789"
URL_SECRET = "url-secret-0123456789"


def offline_wandb(monkeypatch, home) -> None:
    monkeypatch.setenv("HOME", str(home))  # W&B's staging area and settings land in a temporary home
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_RUN_ID", raising=False)


@pytest.fixture(scope="module")
def wandb_run(tmp_path_factory):
    """A 2-epoch run with CSV, TensorBoard and W&B, checkpoints as artifacts, and secrets in env and config."""
    root = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as monkeypatch:
        offline_wandb(monkeypatch, root / "home")
        for name, value in ENV_SECRETS.items():
            monkeypatch.setenv(name, value)
        cfg = make_cfg(
            root / "run",
            "logger=many",
            *FAST,
            "logger.wandb.log_model=true",
            f"+service.api_key={CONFIG_SECRET}",
            f"+service.url='https://bob:{URL_SECRET}@tracking.example.org'",
            "+service.from_env=${oc.env:SEGLAB_TEST_API_KEY}",
        )
        metrics = train(cfg)
    (run_dir,) = (root / "run" / "wandb").glob("offline-run-*")
    return root, OfflineRun(run_dir), metrics


def test_wandb_runs_offline_without_credentials(tmp_path, monkeypatch, caplog):
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc, so no stored login
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = make_cfg(tmp_path / "run", "logger=wandb", *QUICK, "~callbacks.validation_media")
    with caplog.at_level(logging.INFO):
        train(cfg)
    runs = list((tmp_path / "run" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("run-*.wandb"))
    assert f"wandb sync {runs[0]}" in caplog.text
    assert not (tmp_path / "run" / "media").exists()  # ~callbacks.validation_media: no files either


def test_run_config_is_the_flattened_resolved_config_with_git_params_and_command(wandb_run):
    _, run, _ = wandb_run
    config = run.config
    assert config["optimizer.lr"] == 0.01 and config["model.backbone.name"] == "mobilenet_v2"
    assert config["model/decoder"] == "deeplabv3plus" and config["model/backbone"] == "mobilenet_v2" and config["data"] == "synthetic"
    assert config["model.decoder.out_channels"] == 32
    assert len(config["git/commit"]) == 40 and isinstance(config["git/dirty"], bool)
    assert config["params/total"] == config["params/trainable"] > config["params/backbone"] > 0
    assert config["command"].startswith("python ")
    assert run.run.run_group == "train" and run.run.display_name.startswith("deeplabv3plus-mobilenet_v2-synthetic-")


def test_summary_holds_step_and_epoch_metrics_and_the_best_miou(wandb_run):
    _, run, metrics = wandb_run
    assert {"train/loss_step", "train/lr/backbone", "train/lr/head", "val/loss", "val/mAcc", "val/aAcc", "val/IoU/disk", "val/IoU/background"} <= set(run.summary)
    logged = [row["val/mIoU"] for row in run.history if "val/mIoU" in row]
    assert len(logged) == 3  # two epochs, then the best checkpoint's validation
    assert run.summary["val/mIoU"] == {"max": pytest.approx(max(logged))}
    assert sum("train/lr/head" in row and "train/lr/backbone" in row for row in run.history) == 4  # every step


def test_media_per_class_table_confusion_matrix_and_fixed_images_with_masks(wandb_run):
    root, run, _ = wandb_run
    samples = [row for row in run.history if "val/samples/filenames" in row]
    assert len(samples) == 3  # one per validation: the slider compares them
    assert all(row["val/samples/captions"] == samples[0]["val/samples/captions"] for row in samples)  # always the same images
    assert len(samples[0]["val/samples/filenames"]) == 4
    assert all(set(masks) == {"ground_truth", "prediction"} for masks in samples[0]["val/samples/all_masks"])
    labels = run.config["_wandb"]["mask/class_labels"]
    assert {entry["value"]["1"] for entry in labels.values()} == {"disk"}
    files_dir = next((root / "run" / "wandb").glob("offline-run-*")) / "files"
    assert all((files_dir / name).is_file() for row in samples for name in row["val/samples/filenames"])
    assert any(path.startswith("media/images/mask/val/samples") for path in run.files)
    assert any(path.startswith("media/images/val/confusion_matrix") for path in run.files)
    table_path = next(path for path in run.files if path.startswith("media/table/val/per_class"))
    table = json.loads((files_dir / table_path).read_text())
    assert table["columns"][:2] == ["class", "IoU"] and [row[0] for row in table["data"]] == ["background", "disk", "square", "triangle", "cross"]
    chart = run.config["_wandb/visualize/val/per_class_iou"]["panel_config"]  # wandb.plot.bar of the per-class IoU
    assert chart["panelDefId"] == "wandb/bar/v0" and chart["fieldSettings"] == {"label": "class", "value": "IoU"}
    assert chart["stringSettings"]["title"].startswith("per-class IoU, best checkpoint: epoch ")  # the last one logged
    assert len([row for row in run.history if row.get("val/per_class_iou_table/_type") == "table-file"]) == 3


def test_checkpoints_are_logged_as_model_artifacts(wandb_run):
    _, run, _ = wandb_run
    models = [artifact for artifact in run.artifacts if artifact.type == "model"]
    assert models and {"best", "latest"} <= {alias for artifact in models for alias in artifact.aliases}
    assert all(entry.path == "model.ckpt" for artifact in models for entry in artifact.manifest.contents)


def test_nothing_secret_lands_in_any_file(wandb_run):
    root, _, _ = wandb_run
    secrets = [value.encode() for value in (*ENV_SECRETS.values(), CONFIG_SECRET, URL_SECRET)]
    files = [path for path in root.rglob("*") if path.is_file()]
    assert any(path.suffix == ".ckpt" for path in files) and any(path.suffix == ".wandb" for path in files)
    leaks = [(path, secret) for path in files for secret in secrets if secret in path.read_bytes()]
    assert not leaks
    assert "service:\n  api_key: '***'" in (root / "run" / "resolved_config.yaml").read_text()


def test_resuming_continues_the_same_wandb_run(wandb_run, tmp_path, monkeypatch):
    root, first, _ = wandb_run
    offline_wandb(monkeypatch, tmp_path / "home")
    last = root / "run" / "checkpoints" / "last.ckpt"
    epochs_done = torch.load(last, map_location="cpu", weights_only=True)["epoch"] + 1
    cfg = make_cfg(tmp_path / "resumed", "logger=wandb", *FAST, f"ckpt_path={last}", f"trainer.max_epochs={epochs_done + 1}")
    train(cfg)
    (resumed_dir,) = (tmp_path / "resumed" / "wandb").glob("offline-run-*")
    resumed = OfflineRun(resumed_dir)
    assert resumed.run.run_id == first.run.run_id
    assert (tmp_path / "resumed" / "wandb" / "run_id").read_text().strip() == first.run.run_id


def test_logger_many_also_feeds_tensorboard_and_csv(wandb_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root, _, metrics = wandb_run
    events = EventAccumulator(str(root / "run" / "tensorboard"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    assert {"val/mIoU", "train/loss_step", "val/IoU/disk"} <= set(events.Tags()["scalars"])
    assert {"val/confusion_matrix", "val/samples/0", "val/samples/3"} <= set(events.Tags()["images"])
    assert len(events.Images("val/samples/0")) == 3
    assert "val/per_class/text_summary" in events.Tags()["tensors"]
    header = (root / "run" / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "val/mIoU" in header and "train/lr/backbone" in header and "train/lr/head" in header


def test_wandb_writes_its_local_log_every_second(tmp_path):
    from seglab.tracking.wandb import create_wandb_logger

    if "x_transaction_log_flush_interval" not in getattr(wandb.Settings, "model_fields", {}):
        pytest.skip("wandb < 0.31 has no setting for how often its local log is written (it writes every 15 s)")
    logger = create_wandb_logger(save_dir=str(tmp_path), offline=True)  # the run itself starts when first used
    assert logger._wandb_init["settings"].x_transaction_log_flush_interval == 1.0  # W&B's default: 15 s
