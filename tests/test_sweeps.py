"""Sweeps: the W&B sweep definition composes, Hydra multiruns and Optuna studies run and end in a leaderboard,
and the submitit launcher configs compose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from seglab.config.compose import CONFIG_DIR, compose_config

from tests.helpers import QUICK, REPO, run_script

SWEEP = yaml.safe_load((REPO / "sweep.yaml").read_text())

def sampled_values(spec: dict) -> list:
    """The values a sweep may give a parameter: its choices, or the ends of its range."""
    return list(spec["values"]) if "values" in spec else [spec["min"], spec["max"]]


def test_sweep_searches_the_issue_parameters_by_bayes_on_val_miou():
    assert SWEEP["program"] == "train.py" and SWEEP["method"] == "bayes"
    assert SWEEP["metric"] == {"name": "val/mIoU", "goal": "maximize"}
    assert set(SWEEP["parameters"]) == {"optimizer.lr", "optimizer.weight_decay", "loss", "model/decoder", "model/backbone"}
    assert "${args_no_hyphens}" in SWEEP["command"] and "logger=wandb" in SWEEP["command"]
    assert SWEEP["early_terminate"]["type"] == "hyperband"


@pytest.mark.parametrize("name", sorted(SWEEP["parameters"]))
def test_every_sweep_parameter_is_a_valid_override(name):
    spec = SWEEP["parameters"][name]
    group_dir = Path(CONFIG_DIR) / name
    if group_dir.is_dir():  # a config group: every value is one of its options
        assert set(spec["values"]) <= {path.stem for path in group_dir.glob("*.yaml")}, name
    for value in sampled_values(spec):
        cfg = compose_config("train", [f"{name}={value}"])
        if not group_dir.is_dir():
            assert cfg[name.split(".")[0]][name.split(".")[1]] == pytest.approx(value)


def test_a_sampled_command_line_composes():
    sample = {name: {"value": sampled_values(spec)[-1]} for name, spec in SWEEP["parameters"].items()}
    macros = {**create_sweep_command_args({"args": sample}), "env": ["/usr/bin/env"], "interpreter": ["python"], "program": [SWEEP["program"]]}
    command = [part for chunk in SWEEP["command"] for part in (macros[chunk[2:-1]] if chunk.startswith("${") else [chunk])]
    assert command[:3] == ["/usr/bin/env", "python", "train.py"]
    cfg = compose_config("train", command[3:], return_hydra_config=True)
    assert cfg.optimizer.lr == pytest.approx(sample["optimizer.lr"]["value"])
    assert cfg.optimizer.weight_decay == pytest.approx(sample["optimizer.weight_decay"]["value"])
    for group in ("loss", "model/decoder", "model/backbone"):
        assert cfg.hydra.runtime.choices[group] == sample[group]["value"]
    assert list(cfg.logger) == ["wandb"]


@pytest.mark.parametrize(("launcher", "target"), [("submitit_local", "LocalLauncher"), ("submitit_slurm", "SlurmLauncher")])
def test_submitit_launchers_compose(launcher, target):
    cfg = compose_config("train", [f"hydra/launcher={launcher}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith(target)


def leaderboard_rows(output: str) -> list[tuple[str, float]]:
    """(job, score) pairs of the printed leaderboard, in printed order."""
    return [(m.group(1), float(m.group(2))) for m in re.finditer(r"^\s*\d+\s+(\S+)\s+([0-9.]+)\s", output.split("Leaderboard")[1], re.M)]


def test_multirun_runs_each_job_in_its_own_directory_and_wandb_run_and_prints_a_leaderboard(tmp_path):
    env = {"SEGLAB_OUTPUT_DIR": str(tmp_path), "WANDB_MODE": "offline", "WANDB_SILENT": "true", "HOME": str(tmp_path / "home")}
    result = run_script("train.py", "-m", "model=deeplabv3,deeplabv3plus", "optimizer.lr=0.01", "logger=wandb", *QUICK, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()
    scores = {job: json.loads((sweep_dir / job / "metrics.json").read_text())["val/mIoU"] for job in ("0", "1")}
    rows = leaderboard_rows(result.stdout + result.stderr)
    assert [job for job, _ in rows] == sorted(scores, key=scores.get, reverse=True)
    assert [score for _, score in rows] == [pytest.approx(scores[job], abs=1e-4) for job, _ in rows]
    assert "model=deeplabv3plus" in (sweep_dir / "leaderboard.txt").read_text()
    run_ids = {job: (sweep_dir / job / "wandb" / "run_id").read_text().strip() for job in ("0", "1")}
    assert run_ids["0"] != run_ids["1"]
    assert all(list((sweep_dir / job / "wandb").glob(f"offline-run-*-{run_ids[job]}")) for job in ("0", "1"))


def test_optuna_study_of_two_trials_optimises_the_returned_metric(tmp_path):
    result = run_script(
        "train.py",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        "logger=csv",
        *QUICK,
        env={"SEGLAB_OUTPUT_DIR": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "train" / "multiruns").iterdir()
    jobs = sorted(path for path in sweep_dir.iterdir() if (path / "metrics.json").is_file())
    assert [job.name for job in jobs] == ["0", "1"]
    scores = [json.loads((job / "metrics.json").read_text())["val/mIoU"] for job in jobs]
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["best_value"] == pytest.approx(max(scores))
    assert set(results["best_params"]) == {"optimizer.lr", "optimizer.weight_decay", "model/decoder"}
    for job in jobs:
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        assert 1e-4 <= float(overrides["optimizer.lr"]) <= 1e-1 and overrides["model/decoder"] in ("deeplabv3plus", "aspp")
    assert len(leaderboard_rows(result.stdout + result.stderr)) == 2
