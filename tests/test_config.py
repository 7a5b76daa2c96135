"""Every option of every config group composes with values its rules allow; the entry points' --help / --cfg output;
Hydra's composition errors as one line with the closest key or option."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import HydraException
from hydra.utils import instantiate

from seglab.config.compose import CONFIG_DIR, compose_config
from seglab.config.hydra_errors import explain_composition_error
from seglab.config.validation import check_config

from tests.helpers import run_in_process, run_script

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
def test_every_group_option_composes_with_values_its_rules_allow(group, option):
    cfg = compose_config("train", [f"{group}={option}"])
    assert cfg.data.num_classes == len(cfg.data.class_names)
    assert cfg.model.num_classes == cfg.data.num_classes
    check_config(cfg)


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
    result = run_in_process("train.py", "--cfg", "job", "model/backbone=resnet50")
    assert result.returncode == 0, result.stderr
    assert "name: resnet50" in result.stdout and "_target_: seglab.tasks.SemanticSegmentationModule" in result.stdout


def test_unknown_option_is_one_line_with_the_available_ones_and_exit_status_2():
    result = run_script("train.py", "model/backbone=resnet7")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: model/backbone=resnet7 is not an option of model/backbone; did you mean model/backbone=resnet50? "
        "Options: efficientnet_b0, mobilenet_v2, resnet101, resnet18, resnet50, xception65"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_hydra_full_error_shows_the_traceback_too(monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    result = run_in_process("train.py", "data.batch_sze=3")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "ConfigAttributeError: Key 'batch_sze' is not in struct" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: data.batch_sze is not in the config; did you mean")


@pytest.mark.parametrize(
    ("config_name", "overrides", "message"),
    [
        ("train", ["data.batch_sze=3"], "data.batch_sze is not in the config; did you mean data.batch_size? (a key "
                                         "the config does not have is added with +data.batch_sze=3)"),
        ("train", ["trainer.precison=16"], "trainer.precison is not in the config; did you mean trainer.precision?"),
        ("train", ["dta.batch_size=3"], "dta is not in the config; did you mean data?"),
        ("train", ["modl=fcn"], "modl is not in the config; did you mean model?"),
        ("train", ["model/backbon=resnet18"], "model/backbon is not in the config; did you mean model/backbone?"),
        ("eval", ["ckpt_path=x", "eval.mod=slide"], "eval.mod is not in the config; did you mean eval.mode?"),
        ("train", ["xyzzy=1"], "xyzzy is not in the config (a key the config does not have is added with +xyzzy=1)"),
        ("train", ["model=deeplabv3pls"], "model=deeplabv3pls is not an option of model; did you mean "
                                          "model=deeplabv3plus? Options: deeplabv1, deeplabv2, deeplabv3, deeplabv3plus,"),
        ("train", ["data=cityscape"], "data=cityscape is not an option of data; did you mean data=cityscapes?"),
        ("train", ["debug=fdrr"], "debug=fdrr is not an option of debug; did you mean debug=fdr? Options: fdr, limit, "
                                  "overfit, profiler"),
        ("train", ["trainer.limit_val_batches=0"], "trainer.limit_val_batches is an argument of lightning.Trainer that "
                                                   "the config does not list; add it with +trainer.limit_val_batches=0"),
        ("train", ["optimizer=adam", "optimizer.betas=[0.9,0.99]"], "optimizer.betas is an argument of torch.optim.Adam "
                                                                   "that the config does not list; add it with "
                                                                   "+optimizer.betas=[0.9,0.99]"),
        ("train", ["data.crop_size=[7"], "cannot parse the override data.crop_size=[7: no viable alternative at input "
                                         "'[7'; write key=value (see https://hydra.cc/docs/advanced/override_grammar/"),
        ("train", ["data.batch_size"], "cannot parse the override data.batch_size: missing EQUAL at '<EOF>'"),
        ("train", ["+logger.csv.api_key=token-123456", "logger.csv.apikey=token-123456"],
         "logger.csv.apikey is not in the config; did you mean logger.csv.api_key? (a key the config does not have is "
         "added with +logger.csv.apikey=***)"),
    ],
    ids=["key", "nested-key", "top-level-key", "group", "nested-group", "command-key", "no-close-key", "option",
         "data-option", "debug-option", "trainer-argument", "optimizer-argument", "unparsable", "no-value", "secret"],
)
def test_composition_errors_are_one_line_naming_the_closest_key_or_option(config_name, overrides, message):
    with pytest.raises(HydraException) as failed:
        compose_config(config_name, overrides)
    explained = explain_composition_error(failed.value)
    assert explained.startswith(message) and "\n" not in explained
