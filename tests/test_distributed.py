"""DDP through the real entry points: 2 CPU processes (gloo) train and evaluate like one process, in one directory."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from seglab.commands.evaluate import evaluate
from seglab.commands.train import train
from seglab.runtime.distributed import evaluation_sampler
from seglab.runtime.errors import UserError

from tests.helpers import make_cfg, run_script

# Two processes on the CPU, tiny images: 16 training images make 2 steps of 4 per process and epoch.
DDP_TINY = [
    "experiment=smoke",
    "trainer=ddp_cpu",
    "data.dataset.image_size=[32,32]",
    "data.dataset.lengths={train:16,val:7,test:4}",
    "data.batch_size=4",
    "trainer.max_epochs=1",
]


def test_ddp_multirun_trains_each_job_on_two_processes_in_its_own_directory(tmp_path):
    result = run_script("train.py", "-m", *DDP_TINY, "optimizer.lr=0.01,0.02", env={"SEGLAB_OUTPUT_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:]

    sweeps = list((tmp_path / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1, sweeps  # the second process ran its job, not a sweep of its own
    assert not (tmp_path / "train" / "runs").exists()
    jobs = sorted(path for path in sweeps[0].iterdir() if path.is_dir())
    assert [job.name for job in jobs] == ["0", "1"]
    for job, lr in zip(jobs, ["0.01", "0.02"]):
        checkpoint = torch.load(job / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
        assert f"optimizer.lr={lr}" in checkpoint["seglab"]["overrides"]
        assert checkpoint["global_step"] == 2  # 16 images / 2 processes / batch 4: the data was split in two
        if job.name == "0":  # the score rank 0 wrote is the whole split's, as one process scores the checkpoint
            best = job / "checkpoints" / "best.ckpt"
            one = evaluate(make_cfg(tmp_path / "eval", f"ckpt_path={best}", "trainer=cpu", config_name="eval"))  # one process
            assert json.loads((job / "metrics.json").read_text())["val/mIoU"] == pytest.approx(one["mIoU"], abs=1e-6)
        rank1_log = (job / "train_ddp_process_1.log").read_text()  # rank 1 ran in this job's directory ...
        assert "Final metrics" not in rank1_log  # ... and left the reporting to rank 0
        assert "Final metrics" in (job / "train.log").read_text()
        # Rank 0 drew the media of the whole split (its fixed images are spread over both processes' shards).
        assert json.loads((job / "media" / "best" / "info.json").read_text())["step"] == 2
        assert len(list((job / "media" / "best" / "samples").glob("*.png"))) == 4 and (job / "media" / "curves.png").is_file()


def test_two_process_evaluation_gives_the_metrics_of_one_process(trained_run, tmp_path):
    run_dir, _ = trained_run
    best = run_dir / "checkpoints" / "best.ckpt"
    odd_split = ["data.dataset.lengths.val=9", "data.val_batch_size=4"]  # shards of 5 and 4 images, 2 and 1 batches
    one = evaluate(make_cfg(tmp_path / "one", f"ckpt_path={best}", *odd_split, config_name="eval"))

    result = run_script("eval.py", f"ckpt_path={best}", *odd_split, "trainer=ddp_cpu", env={"SEGLAB_OUTPUT_DIR": str(tmp_path / "two")})
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "two" / "eval" / "runs").iterdir())
    assert len(runs) == 1, runs
    two = json.loads((runs[0] / "metrics.json").read_text())
    for name in ("mIoU", "mAcc", "aAcc", "fwIoU"):
        assert two[name] == pytest.approx(one[name], abs=1e-6), name
    for name, iou in one["IoU"].items():
        assert two["IoU"][name] == pytest.approx(iou, abs=1e-6, nan_ok=True), name
    assert 0.2 < one["mIoU"] < 1.0  # a trained model, so a sample counted twice would show


def test_evaluation_shards_hold_every_sample_exactly_once():
    dataset = list(range(9))
    shards = [list(evaluation_sampler(dataset, SimpleNamespace(world_size=2, global_rank=rank))) for rank in (0, 1)]
    assert sorted(shards[0] + shards[1]) == dataset
    assert evaluation_sampler(dataset, SimpleNamespace(world_size=1, global_rank=0)) is None
    with pytest.raises(UserError, match="2 processes"):
        evaluation_sampler(dataset[:1], SimpleNamespace(world_size=2, global_rank=0))


def test_sync_batchnorm_on_cpu_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="sync_batchnorm"):
        train(make_cfg(tmp_path, *DDP_TINY, "trainer.sync_batchnorm=true"))


def test_torchrun_needs_a_named_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")  # what torchrun sets in every process it starts
    with pytest.raises(UserError, match=r"under torchrun .* hydra\.run\.dir="):
        train(make_cfg(tmp_path, "debug=fdr"))
