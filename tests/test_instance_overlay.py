"""Instance overlays: each instance in its own colour, boxed and captioned with its class and score."""

from __future__ import annotations

import numpy as np
import torch

from seglab.viz.instances import draw_instances, instance_colours

from tests.helpers.stand_ins import brightness_instances


def two_squares() -> tuple[np.ndarray, dict]:
    image = np.full((64, 96, 3), 40, dtype=np.uint8)
    masks = torch.zeros(3, 64, 96, dtype=torch.bool)
    masks[0, 20:50, 5:35] = True
    masks[1, 20:50, 55:85] = True  # masks[2] is empty: nothing to draw
    instances = {"masks": masks, "labels": torch.tensor([1, 1, 2]), "scores": torch.tensor([0.9, 0.4, 0.3])}
    return image, instances


def test_each_instance_gets_its_own_colour_and_the_rest_of_the_image_stays():
    image, instances = two_squares()
    before = image.copy()
    out = draw_instances(image, instances, class_names=["background", "car", "bus"], alpha=0.5)
    assert np.array_equal(image, before) and out.shape == image.shape and out.dtype == np.uint8
    colours = instance_colours(2)
    for k, colour in enumerate(colours):
        inside = out[35, 20 if k == 0 else 70]  # well inside the mask, away from box and caption
        expected = (0.5 * np.array(colour) + 0.5 * 40).astype(int)
        assert np.abs(inside.astype(int) - expected).max() <= 1
    assert colours[0] != colours[1]
    assert (out[60, 40] == 40).all() and (out[5, 45] == 40).all()  # neither mask, box nor caption there


def test_captions_name_class_and_score():
    image, instances = two_squares()
    with_scores = draw_instances(image, instances, ["background", "car", "bus"])
    without_scores = draw_instances(image, {"masks": instances["masks"], "labels": instances["labels"]}, ["background", "car", "bus"])
    other_names = draw_instances(image, instances, ["background", "person", "bus"])
    caption_rows = slice(20, 32)  # captions sit inside the top of each box
    assert not np.array_equal(with_scores[caption_rows], without_scores[caption_rows])
    assert not np.array_equal(with_scores[caption_rows], other_names[caption_rows])
    assert np.array_equal(with_scores[40:], without_scores[40:])  # masks and boxes are the same


def test_no_instance_leaves_a_copy_of_the_image():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    empty = {"masks": np.zeros((0, 8, 8), dtype=bool), "labels": np.zeros(0, dtype=int)}
    out = draw_instances(image, empty)
    assert np.array_equal(out, image) and out is not image


class RecordingSink:
    """A media sink that keeps what it is given."""

    def __init__(self) -> None:
        self.images: dict[str, np.ndarray] = {}
        self.masked: dict[str, list] = {}

    def log_image(self, key, image, step) -> None:  # noqa: ANN001
        self.images[key] = image

    def log_masked_images(self, key, items, class_names, ignore_index, step, palette=None) -> None:  # noqa: ANN001
        self.masked[key] = items

    def log_table(self, key, columns, rows, step) -> None:  # noqa: ANN001
        pass


def test_validation_media_show_the_scored_instances_of_an_instance_model(monkeypatch):
    from types import SimpleNamespace

    from hydra.utils import instantiate
    from lightning.pytorch.plugins.precision import Precision

    from seglab.config.compose import compose_config
    from seglab.config.builders import build_datamodule
    from seglab.viz.validation_media import ValidationMedia

    from tests.helpers import QUICK

    cfg = compose_config("train", [*QUICK, "model=panoptic_deeplab", "model.instance_decoder.out_channels=32"])
    datamodule = build_datamodule(cfg)  # with instance targets: the task asks for them
    datamodule.setup("validate")
    model = instantiate(cfg.model, _convert_="partial").eval()
    monkeypatch.setattr(model, "predict_instances", brightness_instances)
    monkeypatch.setattr(model, "update_metrics", lambda *args: None)  # the stand-in has no panoptic map
    trainer = SimpleNamespace(
        val_dataloaders=datamodule.val_dataloader(), precision_plugin=Precision(), sanity_checking=False,
        is_global_zero=True, global_step=3, current_epoch=0, state=SimpleNamespace(fn="fit"),
    )  # fmt: skip
    media = ValidationMedia(num_images=2, max_size=64)
    media.sinks = [RecordingSink()]
    media.on_validation_epoch_start(trainer, model)
    batch = next(iter(datamodule.val_dataloader()))
    with torch.no_grad():
        outputs = model.validation_step(batch, 0)
    media.on_validation_batch_end(trainer, model, outputs, batch, 0)
    assert set(media.seen_instances) == {"val_000000", "val_000007"}
    seen = media.seen_instances["val_000007"]
    assert len(seen["masks"]) > 0 and torch.equal(seen["masks"], outputs["instances"][7]["masks"])

    media.on_validation_epoch_end(trainer, model)
    sink = media.sinks[0]
    assert set(sink.images) == {"val/instances/0", "val/instances/1"}
    shown = sink.images["val/instances/1"]
    assert shown.shape[1:] == (64, 3) and shown.shape[0] > 64 and shown.dtype == np.uint8  # 32x32 enlarged twice
    sample = media.samples[1]
    drawn = draw_instances(sample["display"], seen, list(model.class_names))
    assert np.array_equal(shown[-64:][::2, ::2], drawn)  # under the line naming the sample and the instance count
    assert set(sink.masked["val/samples"][1].masks) == {"ground_truth", "prediction"}  # the semantic branch's map

    forward = media._predict(trainer, model, media.samples)  # what a process that did not see them computes
    assert np.array_equal(forward["val_000007"]["prediction"], outputs["masks"]["prediction"][7].numpy())
    assert torch.equal(media.seen_instances["val_000007"]["masks"], seen["masks"])
