"""Every option of every config group composes, and the entry points' --help / --cfg / unknown-option output."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate

from seglab.config import CONFIG_DIR, compose_config
from tests.conftest import run_script

GROUPS = [
    "data",
    "model",
    "model/backbone",
    "model/decoder",
    "loss",
    "optimizer",
    "scheduler",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "debug",
    "experiment",
    "hparams_search",
]


def group_options() -> list[tuple[str, str]]:
    return [
        (group, path.stem)
        for group in GROUPS
        for path in sorted((Path(CONFIG_DIR) / group).glob("*.yaml"))
    ]


@pytest.mark.parametrize(("group", "option"), group_options(), ids=lambda v: str(v))
def test_every_group_option_composes(group, option):
    cfg = compose_config("train", [f"{group}={option}"])
    assert cfg.data.num_classes == len(cfg.data.class_names)
    assert cfg.model.num_classes == cfg.data.num_classes


def test_every_config_file_starts_with_a_comment():
    for path in Path(CONFIG_DIR).rglob("*.yaml"):
        first = path.read_text().lstrip().splitlines()[0]
        if first.startswith("# @package"):
            first = path.read_text().lstrip().splitlines()[1]
        assert first.startswith("#"), f"{path} should start with a one-line comment saying what it is"


def test_default_is_deeplabv3plus_on_synthetic_without_pretrained_weights():
    cfg = compose_config("train")
    assert cfg.model.decoder._target_.endswith("DeepLabV3PlusDecoder")
    assert cfg.data.dataset._target_.endswith("SyntheticShapes")
    assert cfg.model.backbone.weights is None
    cityscapes = compose_config("train", ["data=cityscapes"])
    assert cityscapes.model.backbone.weights == "imagenet"


def test_cityscapes_root_defaults_to_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tmp_path))
    assert compose_config("train", ["data=cityscapes"]).data.root == str(tmp_path)
    monkeypatch.delenv("CITYSCAPES_DATASET")
    assert compose_config("train", ["data=cityscapes"]).data.root is None


def test_plain_knobs_have_plain_names():
    cfg = compose_config(
        "train",
        ["data.batch_size=3", "data.num_workers=1", "data.crop_size=[32,48]", "trainer.max_epochs=2", "optimizer.lr=0.5", "seed=0"],
    )
    assert (cfg.data.batch_size, cfg.data.num_workers, list(cfg.data.crop_size)) == (3, 1, [32, 48])
    assert (cfg.trainer.max_epochs, cfg.optimizer.lr, cfg.seed) == (2, 0.5, 0)
    assert cfg.model.optimizer.lr == 0.5  # the model's optimizer follows the optimizer group


def test_parts_instantiate_from_targets():
    cfg = compose_config("train", ["model/backbone=resnet18"])
    datamodule = instantiate(cfg.data, _convert_="partial")
    model = instantiate(cfg.model, _convert_="partial")
    assert datamodule.class_names == list(cfg.data.class_names)
    assert model.net.classifier[-1].out_channels == 5


def test_help_lists_the_config_groups():
    result = run_script("train.py", "--help")
    assert result.returncode == 0, result.stderr
    for group in ("data:", "model:", "model/backbone:", "model/decoder:", "loss:", "optimizer:", "trainer:"):
        assert group in result.stdout
    assert "cityscapes" in result.stdout and "deeplabv3plus" in result.stdout


def test_cfg_job_prints_the_composed_config():
    result = run_script("train.py", "--cfg", "job", "model/backbone=resnet50")
    assert result.returncode == 0, result.stderr
    assert "name: resnet50" in result.stdout and "_target_: seglab.tasks.SemanticSegmentationModule" in result.stdout


def test_unknown_option_lists_the_available_ones():
    result = run_script("train.py", "model/backbone=resnet7")
    assert result.returncode != 0
    assert "resnet7" in result.stderr and "resnet18" in result.stderr and "mobilenet_v2" in result.stderr
