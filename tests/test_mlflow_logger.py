"""logger=mlflow against a real, self-hosted MLflow server (SQLite backend) on 127.0.0.1: the run's params,
metrics and images can be read back through MLflow's client."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from seglab.commands.train import train

from tests.helpers import QUICK, make_cfg

mlflow = pytest.importorskip("mlflow")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """An ``mlflow server`` on a free local port, stopped (its whole process group) after the test."""
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--artifacts-destination", str(tmp_path / "artifacts")],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mlflow server did not answer /health within 120 s"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_params_metrics_and_images_reach_the_mlflow_server(mlflow_server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    with caplog.at_level(logging.INFO, logger="seglab"):
        metrics = train(make_cfg(tmp_path / "run", "logger=mlflow", *QUICK, "experiment_name=mlflow-test"))

    client = mlflow.MlflowClient(tracking_uri=mlflow_server)
    experiment = client.get_experiment_by_name("mlflow-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name.startswith("deeplabv3plus-mobilenet_v2-synthetic-")
    address = f"{mlflow_server}/#/experiments/{experiment.experiment_id}/runs/{run.info.run_id}"
    assert f"  dashboard        {address}\n" in caplog.text + "\n"  # the closing summary opens the run on the server
    params = run.data.params
    assert params["optimizer.lr"] == "0.01" and params["model/decoder"] == "deeplabv3plus" and params["model.decoder.out_channels"] == "32"
    assert int(params["params/total"]) > 0 and len(params["git/commit"]) == 40
    assert run.data.metrics["val/mIoU"] == pytest.approx(metrics["val/mIoU"])
    assert {"train/loss_step", "train/lr/backbone", "train/lr/head", "val/IoU/disk", "val/mAcc"} <= set(run.data.metrics)
    assert len(client.get_metric_history(run.info.run_id, "train/lr/backbone")) == 2  # per step

    images = [f.path for f in client.list_artifacts(run.info.run_id, "images")]
    assert any("samples" in path for path in images) and any("confusion_matrix" in path for path in images)
    assert any("per_class_iou" in path for path in images)  # the bar chart, as an image
    local = client.download_artifacts(run.info.run_id, next(p for p in images if "confusion_matrix" in p and p.endswith(".png")), str(tmp_path))
    from PIL import Image

    with Image.open(local) as picture:
        assert picture.width > 100 and picture.height > 100
    tables = client.list_artifacts(run.info.run_id, "val/per_class")
    assert tables and tables[0].path.endswith(".json")


def test_without_a_server_runs_go_to_a_local_sqlite_store(tmp_path, monkeypatch):
    import numpy as np

    from seglab.tracking.media import MLflowSink
    from seglab.tracking.mlflow import create_mlflow_logger

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    logger = create_mlflow_logger(experiment_name="local", run_name="r", save_dir=str(tmp_path / "mlruns"))
    logger.log_metrics({"val/mIoU": 0.5}, step=1)
    MLflowSink(logger).log_image("val/confusion_matrix", np.zeros((8, 8, 3), np.uint8), step=1)
    logger.finalize("success")

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    assert client.get_run(logger.run_id).data.metrics["val/mIoU"] == 0.5
    assert [f.path for f in client.list_artifacts(logger.run_id, "images")]
    assert list((tmp_path / "mlruns" / "artifacts").rglob("*.png"))
