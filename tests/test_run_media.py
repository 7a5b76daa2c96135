"""Every training run directory holds media/, whatever the logger: the latest and the best validation's pictures
(samples with a class legend, confusion matrix, per-class IoU bar chart and table) and curves.png, which a resumed
run continues; the same bar chart goes to the dashboards."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.trainer.states import TrainerFn
from PIL import Image

from seglab.checkpointing.io import load_checkpoint
from seglab.commands.train import train
from seglab.metrics import SegmentationMetrics
from seglab.tracking.media import FileSink, PanelSink
from seglab.viz import validation_media
from seglab.viz.palette import default_palette
from seglab.viz.panels import FULL_LEGEND_CLASSES, legend, legend_classes
from seglab.viz.validation_media import ValidationMedia

from tests.helpers import QUICK, make_cfg

SAMPLES = ["0_val_000000.png", "1_val_000010.png", "2_val_000021.png", "3_val_000031.png"]  # 4 of TINY's 32
FOLDER = {"info.json", "per_class.csv", "per_class_iou.png", "confusion_matrix.png", "trimap_curve.png"} | {
    f"samples/{name}" for name in SAMPLES
}


def files(folder: Path) -> set[str]:
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def picture(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def assert_readable(path: Path, min_width: int = 300, min_colours: int = 20) -> np.ndarray:
    """A real picture: a sensible size, not blank, more than a few colours."""
    pixels = picture(path)
    assert pixels.shape[1] >= min_width and pixels.shape[0] >= 100, (path, pixels.shape)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > min_colours, path
    return pixels


def state(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["callbacks"]


def history(run_dir: Path) -> dict:
    return state(run_dir)["ValidationMedia"]["history"]


def test_a_csv_runs_directory_holds_its_latest_and_best_validations_pictures(trained_run):
    run_dir, metrics = trained_run
    media = run_dir / "media"
    assert {p.name for p in media.iterdir()} == {"latest", "best", "curves.png"}  # no partial folder left
    assert files(media / "latest") == files(media / "best") == FOLDER

    checkpoints = state(run_dir)
    (best_score,) = [v["best_model_score"] for k, v in checkpoints.items() if k.startswith("ModelCheckpoint")]
    best = json.loads((media / "best" / "info.json").read_text())
    assert best["monitor"] == "val/mIoU" and best["score"] == pytest.approx(float(best_score))  # best.ckpt's
    assert best["score"] == pytest.approx(metrics["val/mIoU"])  # train()'s final validation is of best.ckpt
    latest = json.loads((media / "latest" / "info.json").read_text())
    assert (latest["epoch"], latest["step"]) == (3, 64)  # the fit's last validation, not the best's repeat after it

    sample = assert_readable(media / "latest" / "samples" / SAMPLES[1], min_width=3 * 512, min_colours=100)
    assert sample.shape[0] > 512 + 40  # column titles above, the legend below
    assert Image.open(media / "latest" / "samples" / SAMPLES[1]).text["step"] == "64"
    for name in ("confusion_matrix.png", "per_class_iou.png", "trimap_curve.png"):
        assert_readable(media / "best" / name)
    with (media / "best" / "per_class.csv").open() as file:
        rows = list(csv.reader(file))
    assert rows[0] == ["class", "IoU", "Acc", "GT pixels", "predicted pixels"]
    assert [row[0] for row in rows[1:]] == ["background", "disk", "square", "triangle", "cross"]
    assert float(rows[1][1]) == pytest.approx(metrics["val/IoU/background"], abs=1e-6)

    assert_readable(media / "curves.png", min_width=1000)
    recorded = history(run_dir)
    assert [row["step"] for row in recorded["val"]] == [16, 32, 48, 64]
    assert [row["step"] for row in recorded["train"]] == [10, 20, 30, 40, 50, 60]  # every log_every_n_steps
    assert set(recorded["train"][0]["lr"]) == {"backbone", "head"}  # every parameter group's learning rate, by its name


class FakeRun:
    """ValidationMedia's hooks as a fit calls them, with a 3-class confusion matrix and chosen scores."""

    def __init__(self, media_dir: Path | None, mode: str = "max", rank_zero: bool = True) -> None:
        self.media = ValidationMedia(num_images=0, media_dir=media_dir)
        optimizer = torch.optim.SGD([{"params": [torch.zeros(1)], "name": "backbone"}, {"params": [torch.zeros(1)]}], lr=0.1)
        self.trainer = SimpleNamespace(
            state=SimpleNamespace(fn=TrainerFn.FITTING), sanity_checking=False, is_global_zero=rank_zero, global_step=0,
            current_epoch=0, callback_metrics={}, checkpoint_callback=SimpleNamespace(monitor="val/mIoU", mode=mode),
            loggers=[], log_every_n_steps=1, optimizers=[optimizer],
        )  # fmt: skip
        self.module = SimpleNamespace(val_metrics=SegmentationMetrics(3), class_names=["road", "car", "sky"], ignore_index=255)
        self.media.setup(self.trainer, self.module, "fit")
        self.charts: list[str] = []  # the bar charts' titles, as a dashboard gets them
        self.media.sinks = [SimpleNamespace(log_table=lambda *a: None, log_image=lambda *a: None,
                                            log_bar_chart=lambda key, names, ious, title, step: self.charts.append(title))]  # fmt: skip

    def validate(self, epoch: int, step: int, score: float) -> None:
        self.trainer.current_epoch, self.trainer.global_step = epoch, step
        self.media.on_train_batch_end(self.trainer, self.module, None, None, 0)
        metrics = self.module.val_metrics
        metrics.reset()
        target = torch.arange(3).repeat_interleave(20)
        metrics.update(torch.where(torch.rand(60) < score, target, (target + 1) % 3), target)
        self.trainer.callback_metrics = {"val/mIoU": torch.tensor(score), "val/loss": torch.tensor(1 - score)}
        self.media.on_validation_epoch_start(self.trainer, self.module)
        self.media.on_validation_epoch_end(self.trainer, self.module)
        self.media.on_validation_end(self.trainer, self.module)


def test_best_holds_the_best_validation_not_the_last_and_titles_name_epoch_and_step(tmp_path, monkeypatch):
    titles = []
    drawn = validation_media.confusion_matrix_image
    monkeypatch.setattr(validation_media, "confusion_matrix_image", lambda *a: titles.append(a[2]) or drawn(*a))
    run = FakeRun(tmp_path / "media")
    for epoch, score in enumerate([0.5, 0.8, 0.6]):
        run.validate(epoch, 10 * (epoch + 1), score)
    assert not (tmp_path / "media" / "curves.png").exists()  # a seconds-long fit: drawn at its end only
    run.media.on_fit_end(run.trainer, run.module)
    media = tmp_path / "media"
    assert json.loads((media / "best" / "info.json").read_text()) == {"epoch": 1, "step": 20, "monitor": "val/mIoU", "score": pytest.approx(0.8)}
    assert json.loads((media / "latest" / "info.json").read_text())["epoch"] == 2
    assert Image.open(media / "best" / "per_class_iou.png").text["step"] == "20"  # the pictures are the best's
    assert Image.open(media / "latest" / "confusion_matrix.png").text["step"] == "30"
    assert titles == [f"confusion matrix (rows sum to 1), epoch {e + 1}, step {10 * (e + 1)}" for e in range(3)]  # from 1
    assert run.charts[1].startswith("per-class IoU, epoch 2, step 20 (mIoU 0.")
    assert files(media) == {"curves.png", "best/info.json", "latest/info.json"} | {
        f"{folder}/{name}" for folder in ("best", "latest") for name in ("confusion_matrix.png", "per_class_iou.png", "per_class.csv")
    }
    assert set(run.media.history.train[0]["lr"]) == {"backbone", "head"}  # a group's own name, else by its position

    low = FakeRun(tmp_path / "min", mode="min")  # a monitor to minimise (e.g. a loss): the lowest is the best
    for epoch, score in enumerate([0.5, 0.2, 0.6]):
        low.validate(epoch, epoch + 1, score)
    assert json.loads((tmp_path / "min" / "best" / "info.json").read_text())["epoch"] == 1

    other = FakeRun(tmp_path / "rank1", rank_zero=False)  # DDP rank != 0: the same history, no files
    other.validate(0, 10, 0.5)
    other.media.on_fit_end(other.trainer, other.module)
    assert not (tmp_path / "rank1").exists() and other.media.best["step"] == 10

    off = FakeRun(None)  # callbacks.validation_media.media_dir=null: dashboards only
    off.validate(0, 10, 0.5)
    off.media.on_fit_end(off.trainer, off.module)
    assert off.charts and off.media.best["step"] == 10 and {p.name for p in tmp_path.iterdir()} == {"media", "min"}


def test_curves_are_drawn_during_a_long_fit_and_when_it_stops_on_an_exception(tmp_path, monkeypatch):
    run = FakeRun(tmp_path / "media")
    run.validate(0, 10, 0.5)
    assert not (tmp_path / "media" / "curves.png").exists()
    monkeypatch.setattr(run.media, "curves_drawn", run.media.curves_drawn - validation_media.CURVES_EVERY_S - 1)
    run.validate(1, 20, 0.6)  # the last drawing is older than CURVES_EVERY_S: redrawn
    assert Image.open(tmp_path / "media" / "curves.png").text["step"] == "20"
    run.trainer.global_step = 25
    run.media.on_exception(run.trainer, run.module, KeyboardInterrupt())  # Ctrl-C, preemption, a failure
    assert Image.open(tmp_path / "media" / "curves.png").text["step"] == "25"


def test_media_and_curves_without_a_logger_and_after_resume_cover_the_whole_run(tmp_path):
    run_dir = tmp_path / "run"
    train(make_cfg(run_dir, *QUICK, "logger=none"))
    assert files(run_dir / "media" / "best") >= {"info.json", "per_class_iou.png", "confusion_matrix.png", "samples/0_val_000000.png"}
    first = history(run_dir)
    assert [row["step"] for row in first["train"]] == [1, 2] and [row["step"] for row in first["val"]] == [2]

    train(make_cfg(run_dir, *QUICK, "logger=none", "trainer.max_epochs=2", f"ckpt_path={run_dir}"))
    resumed = history(run_dir)
    assert [row["step"] for row in resumed["train"]] == [1, 2, 3, 4] and [row["step"] for row in resumed["val"]] == [2, 4]
    assert resumed["train"][:2] == first["train"]  # the first part's values, from the checkpoint
    assert Image.open(run_dir / "media" / "curves.png").text["step"] == "4"
    assert json.loads((run_dir / "media" / "latest" / "info.json").read_text())["step"] == 4


def test_a_run_without_validation_still_gets_its_curves(tmp_path):
    run_dir = tmp_path / "run"
    train(make_cfg(run_dir, *QUICK, "+trainer.limit_val_batches=0"))
    assert files(run_dir / "media") == {"curves.png"}  # no validation: no latest/ or best/
    assert_readable(run_dir / "media" / "curves.png", min_width=1000)
    assert [row["step"] for row in history(run_dir)["train"]] == [1, 2]


def test_an_instance_models_media_hold_its_instance_overlays(panoptic_run):
    run_dir, _ = panoptic_run
    latest = run_dir / "media" / "latest"
    names = [f"{k}_val_00000{k}.png" for k in range(4)]  # all 4 validation images
    assert {f"instances/{name}" for name in names} | {f"samples/{name}" for name in names} <= files(latest)
    assert json.loads((latest / "info.json").read_text())["monitor"] == "val/PQ"
    assert_readable(latest / "instances" / names[0], min_width=256, min_colours=5)


def test_the_legend_names_every_class_or_for_many_classes_those_shown():
    names = [f"class {i}" for i in range(19)]
    palette = default_palette(19)
    strip = legend(names, palette, 1536)
    colours = {tuple(c) for c in strip.reshape(-1, 3).tolist()}
    assert set(palette) <= colours  # one swatch per class
    assert not np.array_equal(strip, legend([f"other {i}" for i in range(19)], palette, 1536))  # the names are drawn
    assert legend_classes(names, [np.array([[0, 1]])]) == list(range(19))
    many = [f"c{i}" for i in range(FULL_LEGEND_CLASSES + 1)]
    assert legend_classes(many, [np.array([[3, 255]]), np.array([[7, 3]])]) == [3, 7]  # ignore (255) is no class


def test_every_sink_gets_the_per_class_iou_bar_chart(tmp_path):
    logged = {}

    class Recording(PanelSink):
        def log_image(self, key, image, step) -> None:  # noqa: ANN001
            logged[key] = (image, step)

    Recording(None).log_bar_chart("val/per_class_iou", ["road", "car"], [0.9, None], "per-class IoU, epoch 0, step 5", 5)
    image, step = logged["val/per_class_iou"]
    assert step == 5 and image.ndim == 3 and image.std() > 10
    FileSink(tmp_path).log_bar_chart("val/per_class_iou", ["road", "car"], [0.9, None], "t", 5)
    assert_readable(tmp_path / "per_class_iou.png")
