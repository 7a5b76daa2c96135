"""loss.class_weights: auto weights from the training labels (hand-computed), their cache, the start-up checks,
and a short training run with a combined, auto-weighted loss that eval.py then scores from its checkpoint."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import torch
import yaml
from omegaconf import open_dict
from PIL import Image
from torchvision import tv_tensors

from seglab.commands.evaluate import evaluate
from seglab.commands.train import train
from seglab.config.builders import build_datamodule
from seglab.config.compose import compose_config
from seglab.data.datasets.cityscapes_labels import id_to_train_id_lut
from seglab.data.label_stats import count_labels
from seglab.losses.class_weights import label_counts_cache_file, resolve_auto_class_weights
from seglab.runtime.errors import UserError

from tests.helpers import assert_one_line_error, make_cfg, run_in_process
from tests.helpers.cityscapes_tree import write_cityscapes_tree

I = 255  # ignored
# Two 2x4 training label maps over classes a, b, c, d (d never appears).
KNOWN_MASKS = [
    np.array([[0, 0, 0, 0], [0, 0, 1, 1]], dtype=np.uint8),  # a: 6, b: 2 (8 labelled pixels)
    np.array([[0, 0, 0, 0], [2, 2, I, I]], dtype=np.uint8),  # a: 4, c: 2 (6 labelled pixels)
]
# By hand. Pixels a=10, b=2, c=2 of 14. Median frequency: freq = pixels / labelled pixels of the images holding the
# class = [10/14, 2/8, 2/6], median 1/3, weight = median / freq. Inverse: 14 / (3 present classes * pixels).
MEDIAN_FREQUENCY = [7 / 15, 4 / 3, 1.0, 0.0]
INVERSE_FREQUENCY = [7 / 15, 7 / 3, 7 / 3, 0.0]


class KnownLabels(torch.utils.data.Dataset):
    """A training split whose label histogram is known (the validation split reuses it)."""

    def __init__(self, split: str = "train", transforms=None) -> None:
        self.transforms = transforms

    def __len__(self) -> int:
        return len(KNOWN_MASKS)

    def __getitem__(self, index: int) -> dict:
        mask = KNOWN_MASKS[index]
        sample = {"image": tv_tensors.Image(torch.zeros(3, *mask.shape, dtype=torch.uint8)), "mask": tv_tensors.Mask(torch.from_numpy(mask))}
        return self.transforms(sample) if self.transforms is not None else sample


def known_labels_config(*overrides: str):
    cfg = compose_config("train", list(overrides or ["loss.class_weights=auto"]))
    with open_dict(cfg):
        cfg.data.dataset = {"_target_": "tests.test_class_weights.KnownLabels", "_partial_": True}
        cfg.data.num_classes = 4
        cfg.data.class_names = ["a", "b", "c", "d"]
        # Counting must not see augmentation: this crop would leave one pixel per map.
        cfg.data.train_transforms = {"_target_": "seglab.data.transforms.RandomCropWithIgnore", "size": [1, 1]}
    return cfg


@pytest.fixture(autouse=True)
def user_cache(tmp_path, monkeypatch):
    """Label counts of data without a root are cached under $XDG_CACHE_HOME/seglab: keep them in tmp_path."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "seglab"


@pytest.mark.parametrize(("method", "expected"), [("median_frequency", MEDIAN_FREQUENCY), ("inverse_frequency", INVERSE_FREQUENCY)])
def test_auto_weights_of_a_known_histogram_equal_the_hand_computed_ones(method, expected, caplog):
    cfg = known_labels_config("loss.class_weights=auto", f"auto_class_weights={method}")
    with caplog.at_level(logging.INFO, logger="seglab"):
        logged = resolve_auto_class_weights(cfg, build_datamodule(cfg))
    assert list(cfg.loss.class_weights) == pytest.approx(expected, abs=1e-6)
    assert logged == pytest.approx({f"class_weights/{name}": w for name, w in zip("abcd", expected)}, abs=1e-6)
    assert "No train pixel is labelled d: weight 0" in caplog.text
    assert "loss.class_weights=auto" in caplog.text and method in caplog.text  # the printed table


def test_counts_are_per_class_and_per_image_holding_the_class():
    counts = count_labels(KnownLabels(), num_classes=4, ignore_index=I)
    assert counts.pixels.tolist() == [10, 2, 2, 0]
    assert counts.image_pixels.tolist() == [14, 8, 6, 0]
    assert counts.num_images == 2


def test_a_label_value_that_is_no_class_is_named():
    class Stray(KnownLabels):
        def label_mask(self, index):
            return np.array([[0, 9], [I, 1]], dtype=np.uint8)

    with pytest.raises(UserError, match=r"label map 0 of the training split holds the value 9, .* \(0..3\)"):
        count_labels(Stray(), num_classes=4, ignore_index=I)


def test_auto_weights_are_counted_once_then_read_from_the_cache(user_cache, monkeypatch):
    cfg = known_labels_config()
    resolve_auto_class_weights(cfg, build_datamodule(cfg))
    cache_file = label_counts_cache_file(cfg)
    assert cache_file.parent == user_cache and cache_file.is_file()
    assert json.loads(cache_file.read_text())["pixels"] == [10, 2, 2, 0]

    def unreadable(self, index):
        raise AssertionError("the labels were read again")

    monkeypatch.setattr(KnownLabels, "__getitem__", unreadable)
    again = known_labels_config()
    resolve_auto_class_weights(again, build_datamodule(again))
    assert list(again.loss.class_weights) == pytest.approx(MEDIAN_FREQUENCY, abs=1e-6)


def test_a_stale_cache_is_counted_again(caplog):
    cfg = known_labels_config()
    cache_file = label_counts_cache_file(cfg)
    cache_file.parent.mkdir(parents=True)
    cache_file.write_text(json.dumps({"num_images": 7, "pixels": [1, 1, 1, 1], "image_pixels": [4, 4, 4, 4]}))
    with caplog.at_level(logging.INFO, logger="seglab"):
        resolve_auto_class_weights(cfg, build_datamodule(cfg))
    assert re.search(r"Counted the labels of 2 maps in \d+\.\d s", caplog.text)  # with a bar on a terminal
    assert list(cfg.loss.class_weights) == pytest.approx(MEDIAN_FREQUENCY, abs=1e-6)
    assert json.loads(cache_file.read_text())["num_images"] == 2


def test_every_auto_term_of_a_combination_is_resolved_and_others_are_left_alone():
    cfg = known_labels_config("loss=ce_lovasz", "loss.terms.lovasz.class_weights=auto")
    resolve_auto_class_weights(cfg, build_datamodule(cfg))
    assert list(cfg.loss.terms.lovasz.class_weights) == pytest.approx(MEDIAN_FREQUENCY, abs=1e-6)
    assert cfg.loss.terms.ce.class_weights is None


def test_cityscapes_counts_are_cached_under_the_root_and_read_labels_only(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes")
    for image in (root / "leftImg8bit" / "train").rglob("*.png"):
        image.write_bytes(b"")  # counting must not decode images
    cfg = compose_config("train", ["data=cityscapes", f"data.root={root}", "data.num_workers=0", "loss.class_weights=auto", "auto_class_weights=inverse_frequency"])
    resolve_auto_class_weights(cfg, build_datamodule(cfg))
    cache_file = label_counts_cache_file(cfg)
    assert cache_file.parent == root / ".seglab_cache" and cache_file.is_file()
    lut = id_to_train_id_lut()
    train_ids = np.concatenate([lut[np.asarray(Image.open(p))].ravel() for p in (root / "gtFine" / "train").rglob("*_labelIds.png")])
    pixels = np.bincount(train_ids[train_ids != I], minlength=19)
    present = pixels > 0
    expected = np.where(present, pixels.sum() / (present.sum() * np.maximum(pixels, 1)), 0.0)
    assert list(cfg.loss.class_weights) == pytest.approx(expected.tolist(), rel=1e-5)


def test_wrong_length_weights_are_refused_before_any_data_is_loaded(tmp_path):
    # data.root does not exist: loading data first would fail with a data.root message instead.
    cfg = make_cfg(tmp_path, "data=cityscapes", f"data.root={tmp_path / 'missing'}", "loss.class_weights=[1,2,3]")
    with pytest.raises(UserError, match=r"loss.class_weights has 3 entries but the data has 19 classes .*road, sidewalk"):
        train(cfg)


def test_unknown_auto_method_is_refused(tmp_path):
    with pytest.raises(UserError, match="^auto_class_weights=mean: must be one of median_frequency, inverse_frequency$"):
        train(make_cfg(tmp_path, "loss.class_weights=auto", "auto_class_weights=mean"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["loss=ce_dice", "loss.terms.dice.class_weights=[1,2]"], "loss.terms.dice.class_weights has 2 entries but the data has 5 classes"),
        (["loss=ohem_ce", "loss.top_k_percent=0.2"], "loss.thresh=0.7 and loss.top_k_percent=0.2: set exactly one"),
    ],
)
def test_bad_loss_options_exit_with_one_clear_message(overrides, message, tmp_path):
    assert_one_line_error(run_in_process("train.py", *overrides, f"hydra.run.dir={tmp_path}"), message)


def test_training_with_a_combined_auto_weighted_loss_logs_each_term_and_evaluates(tmp_path, user_cache):
    run_dir = tmp_path / "run"
    cfg = make_cfg(
        run_dir,
        "experiment=smoke",
        "logger=csv",
        "loss=ce_dice",
        "loss.weights=[1.0,0.5]",
        "loss.terms.ce.class_weights=auto",
        "data.dataset.lengths={train:16,val:8,test:8}",
        "data.dataset.image_size=[32,32]",
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=1",
    )
    metrics = train(cfg)
    resolved = yaml.safe_load((run_dir / "resolved_config.yaml").read_text())
    weights = resolved["loss"]["terms"]["ce"]["class_weights"]
    assert len(weights) == 5 and weights[0] < 1.0 < max(weights)  # background is the most frequent class
    assert resolved["loss"]["terms"]["dice"]["class_weights"] is None
    assert list(user_cache.glob("label_counts_train_*.json"))
    header = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss/ce_step", "train/loss/dice_step", "train/loss_step"} <= set(header)
    hparams = yaml.safe_load((run_dir / "csv" / "hparams.yaml").read_text())
    assert hparams["class_weights/background"] == pytest.approx(weights[0])

    # eval.py rebuilds the loss from the checkpoint's overrides (...=auto) with the weights training used.
    eval_cfg = make_cfg(tmp_path / "eval", f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", config_name="eval")
    assert evaluate(eval_cfg)["mIoU"] == pytest.approx(metrics["val/mIoU"], abs=1e-6)
