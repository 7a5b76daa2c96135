"""The leaderboard a multirun ends with: its jobs best first, failed jobs named, shared overrides left out."""

from __future__ import annotations

import json

from seglab.tracking.leaderboard import collect_jobs, format_leaderboard


def make_job(sweep_dir, number, overrides, score):
    job = sweep_dir / str(number)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if score is not None:
        (job / "metrics.json").write_text(json.dumps({"val/mIoU": score, "val/loss": 1 - score}))


def test_jobs_are_ranked_by_the_metric_and_failed_ones_listed_last(tmp_path):
    make_job(tmp_path, 0, ["optimizer.lr=0.1", "trainer.max_epochs=2"], 0.40)
    make_job(tmp_path, 1, ["optimizer.lr=0.01", "trainer.max_epochs=2"], 0.55)
    make_job(tmp_path, 2, ["optimizer.lr=0.001", "trainer.max_epochs=2"], None)
    table = format_leaderboard(collect_jobs(tmp_path, "val/mIoU"), "val/mIoU", "max")
    lines = table.splitlines()
    assert lines[2].split() == ["1", "1", "0.5500", "optimizer.lr=0.01"]
    assert lines[3].split() == ["2", "0", "0.4000", "optimizer.lr=0.1"]
    assert lines[4].split()[:4] == ["3", "2", "no", "score"]
    assert "trainer.max_epochs" not in table  # shared by every job
    assert "1 job(s) wrote no val/mIoU" in table


def test_lower_is_better_for_min_metrics(tmp_path):
    make_job(tmp_path, 0, ["optimizer.lr=0.1"], 0.40)
    make_job(tmp_path, 1, ["optimizer.lr=0.01"], 0.55)
    table = format_leaderboard(collect_jobs(tmp_path, "val/loss"), "val/loss", "min")
    assert table.splitlines()[2].split()[1] == "1"  # val/loss 0.45 beats 0.60
