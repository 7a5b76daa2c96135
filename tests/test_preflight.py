"""Bad configs are refused before any data is loaded, each with one clear message; the entry points exit non-zero
without a traceback, and print no secret."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from seglab.errors import UserError, exit_on_user_error
from seglab.evaluate import evaluate
from seglab.train import train
from tests.conftest import make_cfg, run_script

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
        (["model.backbone.output_stride=4"], "'resnet18' cannot reach model.backbone.output_stride=4; it supports "
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


def test_checkpoint_trained_on_other_classes_is_refused_at_eval(trained_run, tmp_path):
    run_dir, _ = trained_run
    cfg = make_cfg(tmp_path, f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", *NO_CITYSCAPES, config_name="eval")
    with pytest.raises(UserError, match=r"best.ckpt was trained on 5 classes \(background, disk, square, triangle, "
                                        r"cross\) but the data has 19 \(road, sidewalk, .*\); use it on data with"):
        evaluate(cfg)


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
