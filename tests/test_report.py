"""``python -m seglab report``: parameters, GFLOPs, output stride, fields of view and the measured ERF."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PIL import Image

from seglab.commands.report import format_report, model_report
from seglab.config.compose import compose_config
from seglab.runtime.errors import UserError

from tests.helpers import REPO


def test_report_command_prints_the_table_and_saves_the_heat_map(tmp_path):
    png = tmp_path / "erf.png"
    args = ["model=deeplabv3", "model/backbone=resnet18", "input_size=[64,96]", f"erf_png={png}", f"hydra.run.dir={tmp_path}"]
    result = subprocess.run(
        [sys.executable, "-m", "seglab", "report", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "resnet18 + DeepLabV3Decoder" in out and "output stride     8" in out
    assert "GFLOPs" in out and "at 64x96" in out
    assert "aspp.branches.3.0" in out and "36" in out  # rate 18 doubled at output stride 8
    assert "effective receptive field" in out
    with Image.open(png) as image:
        assert image.size == (96, 64) and image.mode == "RGB"


def test_report_figures_match_the_model():
    cfg = compose_config("report", ["model=deeplabv3plus", "model/backbone=resnet18", "input_size=[64,64]", "erf_samples=1"])
    report = model_report(cfg)
    parts = report["parameters_backbone"] + report["parameters_decoder"] + report["parameters_heads"]
    assert report["parameters"] == parts > 12_000_000  # ResNet-18 (11.2 M) + the separable DeepLabV3+ decoder (1.2 M)
    assert report["output_stride"] == 16 and 0.5e9 < report["flops"] < 0.7e9  # 0.60 GFLOPs at 64x64
    assert [row.dilation for row in report["atrous"]][:3] == [6, 12, 18]
    assert 1 <= report["erf"].extent <= 64 * 2
    assert "12.33 M" in format_report(report)


def test_report_counts_the_auxiliary_head_and_can_skip_the_erf():
    def heads(*overrides):
        cfg = compose_config("report", ["model=pspnet", "model/backbone=resnet18", "input_size=[32,32]", *overrides])
        report = model_report(cfg)
        assert report["erf"] is None
        return report["parameters_heads"]

    # ResNet-18's stride-16 stage has 256 channels: 3x3 conv to 64 + BatchNorm, then a 1x1 conv to 5 classes.
    aux_head = 256 * 64 * 9 + 2 * 64 + 64 * 5 + 5
    assert heads("erf_samples=0") - heads("erf_samples=0", "model.aux_weight=null") == aux_head


@pytest.mark.parametrize("size", ["[64]", "512", "[64,abc]", "[0,64]"])
def test_report_refuses_a_bad_input_size(size):
    with pytest.raises(UserError, match="input_size"):
        model_report(compose_config("report", [f"input_size={size}"]))
