"""One palette convention for every picture: colour masks, overlays, predict.py's files and the dashboard panels,
always in the dataset's colours (Cityscapes' official ones on a Cityscapes run)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from seglab.commands.train import train
from seglab.data.datasets.cityscapes_labels import train_id_palette
from seglab.viz.palette import colorize, default_palette, overlay
from seglab.viz.panels import legend, panel
from seglab.writers.semantic import save_color

from tests.helpers.cityscapes_tree import write_cityscapes_tree
from tests.helpers import make_cfg


def test_colour_masks_overlays_and_panels_share_one_palette():
    palette = [(10, 20, 30), (200, 100, 0), (0, 255, 0)]
    classes = np.array([[0, 1], [2, 255]])
    image = np.full((2, 2, 3), 100, dtype=np.uint8)
    assert colorize(classes, palette).tolist() == [[[10, 20, 30], [200, 100, 0]], [[0, 255, 0], [0, 0, 0]]]
    blended = overlay(image, classes, palette, alpha=0.5)
    assert blended[0, 1].tolist() == [150, 100, 50] and blended[1, 1].tolist() == [100, 100, 100]  # ignore: the image
    assert overlay(image, classes, palette, alpha=0.0).tolist() == image.tolist()

    picture = panel(image, {"ground_truth": classes, "prediction": classes}, ["a", "b", "c"], palette)
    top = picture.shape[0] - legend(["a", "b", "c"], palette, 6).shape[0] - 2  # under the column titles
    assert picture[top : top + 2, 2:4].tolist() == blended.tolist() == picture[top : top + 2, 4:6].tolist()
    shown = {tuple(c) for c in picture[top + 2 :].reshape(-1, 3).tolist()}
    assert set(palette) <= shown and not set(default_palette(3)[1:]) & shown
    default_legend = {tuple(c) for c in panel(image, {"p": classes}, ["a", "b", "c"])[top + 2 :].reshape(-1, 3).tolist()}
    assert set(default_palette(3)) <= default_legend  # no palette given: the VOC colour map, class 0 black


def test_predict_py_colour_files_are_the_same_colorize_and_overlay(tmp_path):
    palette = train_id_palette()
    classes = np.arange(19, dtype=np.uint8).repeat(2).reshape(2, 19)
    image = np.random.default_rng(0).integers(0, 256, (2, 19, 3), dtype=np.uint8)
    written = np.asarray(Image.open(save_color(classes, image, palette, tmp_path / "x_color.png", alpha=0.3)))
    assert written.tolist() == np.concatenate([colorize(classes, palette), overlay(image, classes, palette, 0.3)], 1).tolist()


def test_colour_files_carry_a_legend_naming_the_classes_in_their_colours(tmp_path):
    names = [f"class {i}" for i in range(5)]
    palette = default_palette(5)
    classes = np.array([[0, 1, 2, 3, 4, 255]], dtype=np.uint8).repeat(6, 0)  # every class and an ignored pixel
    image = np.full((6, 6, 3), 128, dtype=np.uint8)
    plain = np.asarray(Image.open(save_color(classes, image, palette, tmp_path / "plain.png")))
    written = np.asarray(Image.open(save_color(classes, image, palette, tmp_path / "a.png", class_names=names)))
    assert written[:6, :12].tolist() == plain.tolist()  # the mask | overlay above, unchanged
    assert (written[:6, 12:] == 255).all()  # a small image padded white to the legend's readable width
    strip = written[6:]
    assert strip.tolist() == legend(names, palette, 256).tolist()  # the legend of every class below
    assert {tuple(c) for c in palette} <= {tuple(c) for c in strip.reshape(-1, 3).tolist()}  # each class's colour
    renamed = np.asarray(Image.open(save_color(classes, image, palette, tmp_path / "b.png", class_names=list("abcde"))))
    assert renamed[6:].tolist() != strip.tolist()  # the names are drawn, not only the colours


def test_a_cityscapes_runs_dashboard_pictures_are_in_the_official_colours(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator

    root = write_cityscapes_tree(tmp_path / "cityscapes", per_city=1)
    run_dir = tmp_path / "run"
    train(make_cfg(
        run_dir, "data=cityscapes", f"data.root={root}", "model/backbone=resnet18", "model.backbone.weights=null",
        "model.decoder.out_channels=16", "data.crop_size=[32,64]", "data.num_workers=0", "logger=tensorboard",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1",
        "trainer.num_sanity_val_steps=0", "trainer.accelerator=cpu", "callbacks.validation_media.num_images=1",
        "callbacks.validation_media.max_size=64", "callbacks.validation_media.confusion_matrix=false",
    ))  # fmt: skip
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={IMAGES: 0}).Reload()
    shown = events.Images("val/samples/0")[-1]  # (the epoch's validation, then the best checkpoint's)
    picture = np.asarray(Image.open(io.BytesIO(shown.encoded_image_string)).convert("RGB"))
    colours = {tuple(c) for c in picture.reshape(-1, 3).tolist()}
    official = set(train_id_palette())
    assert len(official) == 19 and official <= colours  # the legend's swatches: road purple, sky blue, ...
    greys = {(v, v, v) for v in range(256)}  # the titles' and names' anti-aliased text
    assert not (set(default_palette(19)[1:]) - official - greys) & colours  # none of the VOC colour map's
    assert "val/per_class_iou" in events.Tags()["images"]  # the bar chart, as an image
