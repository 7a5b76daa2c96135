"""What a user sees of a run: the config tree at the start, the run's progress and time left, the log file as it
trains, the learning rate of every parameter group, the closing summary with the dashboards' commands, and a
console without Lightning's noise."""

from __future__ import annotations

import csv
import logging
import warnings
from pathlib import Path

import pytest
import torch

from seglab.callbacks.model_summary import ModelSummary
from seglab.callbacks.progress import format_duration, run_progress
from seglab.config.tree import config_tree, print_config_tree
from seglab.optim.setup import learning_rates, optimizers_with_backbone_group
from seglab.runtime.console import DropMessages, quiet_console
from seglab.tracking.run_summary import format_summary, shown

from tests.helpers import QUICK, TINY, make_cfg, run_in_process, run_script
from tests.helpers.commands import logging_restored
from tests.helpers.probes import RunProgressProbe

# The lines `make train` printed before (issue 18): product tips, a deprecation from a dependency, lines said twice
# by Lightning's own handler ("INFO: ..."), and lines that say nothing here.
NOISE = (
    "💡 Tip", "litlogger", "litmodels", "LeafSpec", "_pytree", "Trainer already configured with model summary",
    "Total Flops", "TPU available", "Loading `train_dataloader` to estimate", "Loaded model weights from the checkpoint",
    "\nINFO: ", "is not supported by the model summary",
)


def test_run_progress_from_the_first_step_to_the_end():
    assert run_progress(0, 480, 0.0) == "step 0/480 · --:-- left"  # no pace yet, no division by zero
    assert run_progress(120, 480, 60.0) == "step 120/480 · 0:03:00 left"
    assert run_progress(480, 480, 240.0) == "step 480/480 · done"
    assert run_progress(130, 480, 5.0, done_at_start=120) == "step 130/480 · 0:02:55 left"  # a resumed run's pace
    assert run_progress(120, 480, 0.0, done_at_start=120) == "step 120/480 · --:-- left"
    assert run_progress(7, float("inf"), 3.0) == "step 7"  # trainer.max_epochs=-1, max_steps=-1: no end
    assert format_duration(2 * 86400 + 3600) == "2 days, 1:00:00"


def test_every_parameter_group_has_a_named_learning_rate():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 1))
    setup = optimizers_with_backbone_group(net, net[0].parameters(), lambda groups: torch.optim.SGD(groups, lr=0.01), None, 0.1, 10)
    assert set(setup) == {"optimizer"}  # no scheduler: nothing to step, the rates are still logged
    assert learning_rates(setup["optimizer"]) == pytest.approx({"train/lr/backbone": 0.001, "train/lr/head": 0.01})
    for group in setup["optimizer"].param_groups:  # as a checkpoint written before the groups had names restores them
        del group["name"]
    assert set(learning_rates(setup["optimizer"])) == {"train/lr/backbone", "train/lr/head"}


def test_the_config_tree_masks_secrets_and_print_config_false_prints_nothing(tmp_path, capsys):
    cfg = make_cfg(tmp_path, *TINY, "+logger.csv.api_token=hunter2-secret")
    tree = config_tree(cfg)
    assert tree.startswith("config\n├── run\n") and "│   └── task_name: train" in tree
    assert "── model\n" in tree and "── trainer\n" in tree and "trimap_widths: [1, 2, 5, 10, 20, 40]" in tree
    assert "hunter2-secret" not in tree and "api_token: '***'" in tree
    assert "│       loss: ${loss}\n" in tree and tree.count("_target_: torch.optim.SGD") == 1  # each group once
    print_config_tree(make_cfg(tmp_path, *TINY, "print_config=false"))
    assert capsys.readouterr().out == ""


def test_the_model_summary_leaves_out_flops_that_were_not_counted(caplog):
    columns = [(" ", ["0"]), ("Name", ["net"]), ("Params", ["1.0 K"]), ("FLOPs", ["0"])]
    with caplog.at_level(logging.INFO, logger="lightning.pytorch.callbacks.model_summary"):
        ModelSummary.summarize(columns, 1000, 1000, 0.004, {"train": 1, "eval": 0}, total_flops=0)
        assert "FLOPs" not in caplog.text and "Total Flops" not in caplog.text and "Total params" in caplog.text
        ModelSummary.summarize(columns, 1000, 1000, 0.004, {"train": 1, "eval": 0}, total_flops=5000)
        assert "Total Flops" in caplog.text  # counted: kept


def test_noise_filter_drops_only_the_lines_it_names():
    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("lightning.pytorch.utilities.rank_zero", logging.INFO, __file__, 1, message, (), None)

    drop = DropMessages()
    assert not drop.filter(record("💡 Tip: For seamless cloud logging ... litlogger"))
    assert not drop.filter(record("TPU available: False, using: 0 TPU cores"))
    assert drop.filter(record("GPU available: True (cuda), used: True"))
    assert drop.filter(record("Restoring states from the checkpoint path at best.ckpt"))
    assert drop.filter(record("TPU available: True, using: 8 TPU cores"))


def test_quiet_console_silences_torchs_leafspec_deprecation_from_lightning_only():
    from lightning.pytorch.utilities._pytree import _tree_flatten

    with logging_restored(), warnings.catch_warnings(record=True) as caught:  # quiet_console changes both
        warnings.simplefilter("always")
        _tree_flatten(1)
        assert any("LeafSpec" in str(w.message) for w in caught)  # what Lightning triggers on every batch
        caught.clear()
        quiet_console()
        _tree_flatten(1)
        assert not caught


def test_summary_paths_are_relative_inside_the_run_dir(tmp_path):
    (tmp_path / "media").mkdir()
    assert shown(tmp_path / "media", tmp_path) == "media/" and shown("/etc/hosts", tmp_path) == "/etc/hosts"
    text = format_summary("Run finished", tmp_path, [("metrics", "metrics.json"), None, ("dashboard", "tensorboard ...")])
    assert text == f"Run finished: {tmp_path}\n  metrics    metrics.json\n  dashboard  tensorboard ..."


def test_a_run_shows_its_progress_logs_as_it_trains_and_ends_with_its_summary(tmp_path, monkeypatch):
    """In-process train.py with CSV, TensorBoard and MLflow: a relative paths.log_dir puts the MLflow store under the
    working directory's log dir, made absolute, though the run itself is elsewhere (hydra.run.dir)."""
    pytest.importorskip("mlflow")
    pytest.importorskip("tensorboard")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir, workdir = tmp_path / "elsewhere" / "run", tmp_path / "project"
    workdir.mkdir()
    result = run_in_process(
        "train.py", *QUICK, "logger=[csv,tensorboard,mlflow]", "scheduler=constant", "model.backbone_lr_mult=0.1",
        "trainer.max_epochs=2", "paths.log_dir=logs", f"hydra.run.dir={run_dir}",
        "+callbacks.probe._target_=tests.helpers.probes.RunProgressProbe", cwd=workdir,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = RunProgressProbe.seen
    assert seen["first"] == "step 0/4 · --:-- left"
    assert seen["mid"].startswith("step 1/4 · ") and seen["mid"].endswith(" left")
    assert seen["validation"].startswith("step 2/4 · ") and seen["end"] == "step 4/4 · done"
    assert seen["description"] == "Epoch 2/2 · step 4/4 · done"
    assert "Seed set to 42" in seen["log_at_start"] and "GPU available" in seen["log_at_start"]  # written as it runs
    log_text = (run_dir / "train.log").read_text()
    assert "Epoch 1/2 · step 2/4 · " in log_text and "val/mIoU" in log_text

    with open(run_dir / "csv" / "metrics.csv") as f:
        rows = [row for row in csv.DictReader(f) if row.get("train/lr/head")]
    assert len(rows) == 4 and "train/lr" not in rows[0]
    assert all(float(r["train/lr/head"]) == pytest.approx(0.01) for r in rows)
    assert all(float(r["train/lr/backbone"]) == pytest.approx(0.001) for r in rows)

    out = result.stdout
    assert out.startswith("config\n├── run\n")
    store = workdir / "logs" / "mlruns"
    assert (store / "mlflow.db").is_file() and not (run_dir.parent / "logs").exists()
    summary = out[out.index("Run finished: "):]
    assert summary.startswith(f"Run finished: {run_dir}\n")
    assert "  best checkpoint  checkpoints/best.ckpt  (val/mIoU " in summary and ", epoch 2, step 4)" in summary
    assert "  metrics          metrics.json\n" in summary and "  logs             train.log, csv/metrics.csv\n" in summary
    assert f"  dashboard        tensorboard --logdir {run_dir / 'tensorboard'}\n" in summary
    assert f"  dashboard        mlflow ui --backend-store-uri sqlite:///{store / 'mlflow.db'}" in summary
    assert not any(noise in out for noise in NOISE), [n for n in NOISE if n in out]


def test_make_train_console_is_quiet_and_ends_with_the_summary(tmp_path):
    """The one subprocess run: the console of `make train` (experiment=quickstart, cut to two steps), with the
    user's default warning filters (not the tests' PYTHONWARNINGS=ignore)."""
    run_dir = tmp_path / "run"
    result = run_script(
        "train.py", "experiment=quickstart", *QUICK, "+trainer.limit_val_batches=1", f"hydra.run.dir={run_dir}",
        env={"PYTHONWARNINGS": ""},
    )  # fmt: skip
    console = result.stdout + result.stderr
    assert result.returncode == 0, console[-3000:]
    assert not any(noise in console for noise in NOISE), [n for n in NOISE if n in console]
    assert console.count("Seed set to 42") == 1  # once, not also through Lightning's own handler
    assert "├── model\n" in result.stdout and "Epoch 1/1 · step 2/2 · done ━" in console  # the bar
    assert "[seglab.callbacks.progress][INFO] - Epoch 1/1 · step 2/2 · done · " in result.stdout  # the epoch's line
    assert f"Run finished: {run_dir}\n  best checkpoint  checkpoints/best.ckpt  (val/mIoU " in result.stdout
    log_text = (run_dir / "train.log").read_text()
    assert "Seed set to 42" in log_text and "Epoch 1/1 · step 2/2 · done" in log_text and "Run finished" in log_text
