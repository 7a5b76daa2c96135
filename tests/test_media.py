"""Dashboard pictures: colours, display images, the per-class table and which loggers get media."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from torchvision import tv_tensors

from seglab.data.transforms import Normalize
from seglab.tracking.media import MaskedImage, TensorBoardSink, media_sinks
from seglab.viz.palette import colorize, default_palette
from seglab.viz.panels import confusion_matrix_image, panel, to_display
from seglab.viz.validation_media import ValidationMedia, class_table_rows


def test_palette_gives_each_class_its_own_colour_and_ignored_pixels_black():
    assert len({tuple(c) for c in default_palette(19)}) == 19
    mask = np.array([[0, 1], [2, 255]])
    colours = colorize(mask, default_palette(3))
    assert colours[1, 1].tolist() == [0, 0, 0] and colours[0, 1].tolist() == list(default_palette(3)[1])


def test_normalised_model_inputs_are_shown_as_the_original_image():
    original = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    normalize = Normalize()
    sample = normalize({"image": tv_tensors.Image(original), "mask": tv_tensors.Mask(torch.zeros(8, 8))})
    shown = to_display(sample["image"], normalize)
    assert np.abs(shown.astype(int) - original.permute(1, 2, 0).numpy().astype(int)).max() <= 1


def test_class_table_rows_come_from_the_confusion_matrix():
    confmat = torch.tensor([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    rows = class_table_rows(confmat, ["a", "b", "c"])
    assert rows[0] == ["a", pytest.approx(8 / 11), pytest.approx(0.8), 10, 9]
    assert rows[1] == ["b", pytest.approx(3 / 6), pytest.approx(0.75), 4, 5]
    assert rows[2] == ["c", None, None, 0, 0]  # absent everywhere: no score


def test_panel_and_confusion_matrix_are_rgb_images():
    image = np.zeros((16, 20, 3), dtype=np.uint8)
    masks = {"ground_truth": np.ones((16, 20), dtype=np.int64), "prediction": np.zeros((16, 20), dtype=np.int64)}
    picture = panel(image, masks, ["background", "thing"])
    assert picture.shape[1] == 60 and picture.shape[0] > 16 and picture.dtype == np.uint8
    matrix = confusion_matrix_image(np.array([[5, 1], [0, 3]]), ["background", "thing"])
    assert matrix.ndim == 3 and matrix.shape[2] == 3 and matrix.dtype == np.uint8


def test_media_goes_only_to_loggers_that_show_it(tmp_path):
    csv = CSVLogger(tmp_path)
    tensorboard = TensorBoardLogger(tmp_path, name="tb")
    sinks = media_sinks([csv, tensorboard])
    assert [type(sink) for sink in sinks] == [TensorBoardSink]
    assert media_sinks([csv]) == []


def test_small_images_are_enlarged_and_large_ones_shrunk_for_display():
    media = ValidationMedia(max_size=256)
    small = MaskedImage(np.zeros((32, 48, 3), np.uint8), {"prediction": np.ones((32, 48), np.int64)})
    large = MaskedImage(np.zeros((1024, 2048, 3), np.uint8), {"prediction": np.ones((1024, 2048), np.int64)})
    assert media._fit_for_display(small).image.shape == (160, 240, 3)  # the largest whole factor that fits
    shrunk = media._fit_for_display(large)
    assert shrunk.image.shape == (128, 256, 3) and shrunk.masks["prediction"].shape == (128, 256)
    assert set(np.unique(shrunk.masks["prediction"])) == {1}


def test_fixed_samples_are_predicted_from_the_validation_pass_or_by_a_forward_pass():
    from types import SimpleNamespace

    from hydra.utils import instantiate
    from lightning.pytorch.plugins.precision import Precision

    from seglab.config.compose import compose_config

    from tests.helpers import QUICK

    cfg = compose_config("train", QUICK)
    datamodule = instantiate(cfg.data, _convert_="partial")
    datamodule.setup("validate")
    model = instantiate(cfg.model, _convert_="partial").eval()
    trainer = SimpleNamespace(val_dataloaders=datamodule.val_dataloader(), precision_plugin=Precision())
    media = ValidationMedia(num_images=2)
    samples = media.fixed_samples(trainer)
    assert [s["name"] for s in samples] == ["val_000000", "val_000007"]  # the ends of the 8-image split

    batch = next(iter(datamodule.val_dataloader()))
    with torch.no_grad():
        outputs = model.validation_step(batch, 0)
    media.on_validation_batch_end(trainer, model, outputs, batch, 0)
    assert set(media.seen) == {"val_000000", "val_000007"}
    assert np.array_equal(media.seen["val_000007"]["prediction"], outputs["masks"]["prediction"][7].numpy())

    forward = media._predict(trainer, model, samples)  # what a process that did not see them computes
    assert np.array_equal(forward["val_000007"]["prediction"], media.seen["val_000007"]["prediction"])
    shown = media.render_samples(trainer, model, "epoch 1, step 2")[1]
    assert (shown.caption, shown.heading) == ("val_000007", "val_000007, epoch 1, step 2")  # the file's name, the panel's line
