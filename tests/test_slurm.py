"""SLURM without a cluster: the launcher config makes the sbatch script, and a requeued job resumes training."""

from __future__ import annotations

import os
import shutil
import time
from types import SimpleNamespace

import submitit
import torch
from hydra.utils import instantiate

from seglab.checkpointing.requeue import requeued_checkpoint
from seglab.commands.train import train
from seglab.config.compose import compose_config

from tests.helpers import TINY, make_cfg
from tests.helpers.probes import ResumeProbe


def test_slurm_launcher_config_asks_for_the_cluster_shape_and_the_requeue_signal(tmp_path, monkeypatch):
    fake_srun = tmp_path / "bin" / "srun"  # submitit looks for srun before building a SLURM executor
    fake_srun.parent.mkdir()
    fake_srun.write_text("#!/bin/sh\nexit 1\n")
    fake_srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_srun.parent}{os.pathsep}{os.environ['PATH']}")
    overrides = [
        "hydra/launcher=submitit_slurm", "trainer=ddp", "hydra.launcher.nodes=2", "hydra.launcher.gpus_per_node=4",
        "hydra.launcher.timeout_min=600", "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path / 'sweep'}",
        "hydra.job.name=train",
    ]  # fmt: skip
    cfg = compose_config("train", overrides, return_hydra_config=True)
    launcher = instantiate(cfg.hydra.launcher)  # the plugin's SlurmLauncher, as `python train.py -m ...` makes it
    launcher.config = cfg
    scripts = []

    def submit_nothing(executor, function, *args):  # instead of calling sbatch: keep the script it would get
        scripts.append(executor._executor._make_submission_file_text("python -m submitit.core._submit", "0"))
        return []

    monkeypatch.setattr(submitit.AutoExecutor, "map_array", submit_nothing)
    launcher.launch([["optimizer.lr=0.01"]], initial_job_idx=0)
    (script,) = scripts
    for flag in ["--nodes=2", "--gpus-per-node=4", "--ntasks-per-node=4", "--time=600", "--partition=gpu",
                 "--signal=USR1@120", "--requeue"]:  # fmt: skip
        assert f"#SBATCH {flag}\n" in script, flag


def test_ddp_trainer_takes_the_node_count_of_the_slurm_job(monkeypatch):
    for name, value in {"SLURM_NTASKS": "8", "SLURM_NNODES": "2", "SLURM_JOB_NAME": "train"}.items():
        monkeypatch.setenv(name, value)
    assert compose_config("train", ["trainer=ddp"]).trainer.num_nodes == 2
    monkeypatch.delenv("SLURM_NTASKS")  # not a SLURM batch job: one node
    assert compose_config("train", ["trainer=ddp"]).trainer.num_nodes == 1


def test_requeued_job_picks_the_newest_checkpoint(tmp_path, monkeypatch):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    trainer = SimpleNamespace(default_root_dir=str(tmp_path), checkpoint_callbacks=[SimpleNamespace(dirpath=str(checkpoints))])
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert requeued_checkpoint(trainer) is None  # a first run resumes from nothing
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    assert requeued_checkpoint(trainer) is None  # requeued before the first checkpoint
    hpc, last = tmp_path / "hpc_ckpt_1.ckpt", checkpoints / "last.ckpt"
    for age, path in enumerate([last, hpc]):  # hpc_ckpt saved after last.ckpt (the requeue signal)
        path.write_bytes(b"")
        os.utime(path, (time.time() - 100 + age, time.time() - 100 + age))
    assert requeued_checkpoint(trainer) == str(hpc)
    os.utime(last)  # preempted after a later epoch saved last.ckpt
    assert requeued_checkpoint(trainer) == str(last)


def test_requeued_training_resumes_from_last_checkpoint(trained_run, tmp_path, monkeypatch):
    run_dir, _ = trained_run
    (tmp_path / "checkpoints").mkdir()
    last = shutil.copy(run_dir / "checkpoints" / "last.ckpt", tmp_path / "checkpoints" / "last.ckpt")
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # SLURM started this job again, in the same run directory
    cfg = make_cfg(
        tmp_path, *TINY, f"trainer.max_epochs={checkpoint['epoch'] + 2}", "data.dataset.lengths={train:16,val:8,test:8}",
        "+callbacks.probe._target_=tests.helpers.probes.ResumeProbe",
    )  # fmt: skip
    train(cfg)
    assert ResumeProbe.seen["global_step"] == checkpoint["global_step"]
    assert ResumeProbe.seen["epoch"] == checkpoint["epoch"] + 1
