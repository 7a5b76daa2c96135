"""Bad configs, and checkpoints that do not fit them, are refused before any data is loaded, each with one clear
message; the entry points exit non-zero without a traceback, and print no secret."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from seglab.checkpointing.io import load_checkpoint
from seglab.commands.evaluate import evaluate
from seglab.commands.export import export_model
from seglab.commands.predict import predict
from seglab.commands.train import train
from seglab.config.compose import compose_config
from seglab.runtime.errors import UserError, exit_on_user_error

from tests.helpers import TINY, make_cfg, run_script

# Cityscapes whose root does not exist: a check that passes goes on to read the data and fails on the root instead.
NO_CITYSCAPES = ["data=cityscapes", "data.root=/nonexistent/cityscapes", "data.backbone_weights=null"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.num_classes=3"], "model.num_classes=3 but the data has 5 classes"),
        (
            [*NO_CITYSCAPES, "data.num_classes=20", "data.class_names=[a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t]"],
            "data.num_classes=20 but CityscapesDataset has 19 classes",
        ),
        (["model.backbone.output_stride=4"], "'resnet101' cannot reach model.backbone.output_stride=4; it supports "
                                             "output strides [8, 16, 32]"),
        (["model.backbone.name=xception"], "'xception' cannot reach model.backbone.output_stride=16"),
        (
            [*NO_CITYSCAPES, "data.crop_size=[2100,4200]"],
            "the training crop 2100x4200 (data.crop_size) is larger than any image the training transforms produce "
            "(1024x2048 images scaled by at most 2: at most 2048x4096)",
        ),
        (["model.decoder.rates=[]"], "model.decoder.rates=[]: atrous rates must be a non-empty list of positive"),
        (["model.decoder.rates=[6,0,18]"], "model.decoder.rates=[6, 0, 18]: atrous rates must be"),
        (["model=deeplabv1", "model.decoder.rate=-2"], "model.decoder.rate=[-2]: atrous rates must be"),
        (["loss.class_weights=[1.0,2.0]"], "loss.class_weights has 2 entries but the data has 5 classes"),
        (["data.ignore_index=0"], "data.ignore_index=0 collides with class 0 ('background'); use a value outside 0..4"),
        (["loss.ignore_index=2"], "loss.ignore_index=2 collides with class 2 ('square')"),
    ],
    ids=["model-classes", "dataset-classes", "output-stride", "backbone-stride", "crop", "rates-empty",
         "rates-zero", "rate-negative", "class-weights", "data-ignore-index", "loss-ignore-index"],
)
def test_bad_config_is_refused_before_any_data_is_loaded(overrides, message, tmp_path):
    with pytest.raises(UserError) as refused:
        train(make_cfg(tmp_path, *overrides))
    assert message in str(refused.value)
    assert not (tmp_path / "checkpoints").exists()


CITYSCAPES_CLASSES = compose_config("train", ["data=cityscapes"]).data.class_names
TINY_RUN = "model=deeplabv3plus / resnet18 / 5 classes (background, disk, square, triangle, cross)"


@pytest.fixture(scope="module")
def fcn_checkpoint(trained_run, tmp_path_factory) -> Path:
    """A checkpoint whose stored config is an FCN / ResNet-101 on Cityscapes' 19 classes (the weights are not read)."""
    checkpoint = load_checkpoint(trained_run[0] / "checkpoints" / "best.ckpt")
    config = checkpoint["seglab"]["config"]
    config["model"]["decoder"]["_target_"] = "seglab.models.decoders.FCNDecoder"
    config["model"]["backbone"]["name"] = "resnet101"
    config["data"]["class_names"] = list(CITYSCAPES_CLASSES)
    checkpoint["seglab"]["choices"] = {**checkpoint["seglab"]["choices"], "model": "fcn"}
    path = tmp_path_factory.mktemp("fcn") / "fcn.ckpt"
    torch.save(checkpoint, path)
    return path


@pytest.mark.parametrize("choices", [True, False], ids=["with-choices", "older-checkpoint"])
def test_resuming_from_a_checkpoint_of_another_model_is_refused_naming_both(fcn_checkpoint, tmp_path, choices):
    path = fcn_checkpoint
    if not choices:  # checkpoints written before the config group choices were stored: the decoder names it
        checkpoint = load_checkpoint(fcn_checkpoint)
        del checkpoint["seglab"]["choices"]
        torch.save(checkpoint, path := tmp_path / "old.ckpt")
    with pytest.raises(UserError) as refused:
        train(make_cfg(tmp_path / "run", f"ckpt_path={path}", *TINY))
    model = "fcn" if choices else "FCNDecoder"
    assert str(refused.value) == (
        f"{path} does not fit this run: the checkpoint is model={model} / resnet101 / 19 classes (road, sidewalk, "
        f"building, wall, fence, pole, ...); this run is {TINY_RUN}. Give the model and data settings it was "
        "trained with, or a checkpoint of this model and data"
    )
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize(
    ("config_name", "overrides", "this_run"),
    [
        ("eval", NO_CITYSCAPES, "model=deeplabv3plus / resnet18 / 19 classes (road, sidewalk, building, wall, fence, "
                                "pole, ...)"),
        ("eval", ["data.class_names=[a,b,c,d,e]"], "model=deeplabv3plus / resnet18 / 5 classes (a, b, c, d, e)"),
    ],
    ids=["eval-other-classes", "eval-other-class-names"],
)
def test_commands_refuse_a_checkpoint_that_does_not_fit_their_overrides(trained_run, tmp_path, config_name,
                                                                        overrides, this_run):
    best = trained_run[0] / "checkpoints" / "best.ckpt"
    (tmp_path / "photo.png").touch()  # refused before any image is read
    extra = [f"input={tmp_path / 'photo.png'}"] if config_name == "predict" else []
    cfg = make_cfg(tmp_path, f"ckpt_path={best}", *extra, *overrides, config_name=config_name)
    with pytest.raises(UserError) as refused:
        {"eval": evaluate, "predict": predict, "export": export_model}[config_name](cfg)
    assert f"{best} does not fit this run: the checkpoint is {TINY_RUN}; this run is {this_run}" in str(refused.value)



@pytest.mark.parametrize(("config_name", "override"), [("predict", "model/backbone=mobilenet_v2"), ("export", "model=fcn")],
                         ids=["predict-other-backbone", "export-other-preset"])
def test_commands_refuse_to_choose_another_network_for_a_checkpoint(trained_run, tmp_path, config_name, override):
    """A checkpoint command rebuilds the checkpoint's network: re-choosing its preset or backbone is refused before
    anything is built (single keys of the preset can be overridden)."""
    best = trained_run[0] / "checkpoints" / "best.ckpt"
    (tmp_path / "photo.png").touch()
    extra = [f"input={tmp_path / 'photo.png'}"] if config_name == "predict" else []
    cfg = make_cfg(tmp_path, f"ckpt_path={best}", *extra, override, config_name=config_name)
    with pytest.raises(UserError, match=f"{override} would choose another network than the one {best} holds"):
        {"predict": predict, "export": export_model}[config_name](cfg)

@pytest.mark.parametrize(("config_name", "override", "key", "shapes"), [
    ("train", "model.decoder.out_channels=64", "net.decoder.aspp.branches.0.0.weight", "[256, 512, 1, 1] in the "
                                                                                         "checkpoint, [64, 512, 1, 1]"),
    ("eval", "model.decoder.low_level_channels=32", "net.decoder.low_level.0.weight", "[48, 64, 1, 1] in the "
                                                                                       "checkpoint, [32, 64, 1, 1]"),
], ids=["resume", "eval"])
def test_weights_of_other_model_settings_are_refused_before_loading(trained_run, tmp_path, config_name, override,
                                                                     key, shapes):
    best = trained_run[0] / "checkpoints" / "best.ckpt"
    cfg = make_cfg(tmp_path, f"ckpt_path={best}", *(TINY if config_name == "train" else []), override,
                   config_name=config_name)
    with pytest.raises(UserError) as refused:
        (train if config_name == "train" else evaluate)(cfg)
    message = str(refused.value)
    assert message.startswith(f"{best} holds weights that do not fit the model this config builds: ")
    assert f"of another shape ({key}: {shapes} in the model)" in message
    assert message.endswith("Give the model settings it was trained with (its run's .hydra/overrides.yaml lists them)")


def test_entry_point_exits_non_zero_with_one_line_and_no_traceback(tmp_path):
    result = run_script("train.py", *NO_CITYSCAPES, "model.decoder.rates=[6,-12,18]", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: model.decoder.rates=[6, -12, 18]: atrous rates must be a non-empty list of positive integers"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_printed_errors_mask_secrets_of_the_environment_and_the_config(monkeypatch, capsys):
    monkeypatch.setenv("SEGLAB_TEST_TOKEN", "env-token-0123456789")
    cfg = OmegaConf.create({"service": {"api_key": "cfg-key-0123456789"}})

    @exit_on_user_error
    def main(cfg):
        raise UserError("cannot reach https://user:url-pass-0123@host/?k=cfg-key-0123456789 with env-token-0123456789")

    with pytest.raises(SystemExit) as exited:
        main(cfg)
    assert exited.value.code == 2
    printed = capsys.readouterr().err
    assert printed == "error: cannot reach https://user:***@host/?k=*** with ***\n"
