"""Model presets: each trains a step at output strides 8 and 16 with the backbones it is used with, DeepLabV3
matches torchvision layer for layer, and the auxiliary head's loss is logged during training only."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from torch import nn

from seglab.commands.train import train
from seglab.config.compose import compose_config

from tests.helpers import PRESETS, assert_one_line_error, make_cfg, run_in_process

pytestmark = pytest.mark.usefixtures("one_thread")


def build_preset(preset: str, *overrides: str) -> nn.Module:
    cfg = compose_config("train", [f"model={preset}", *overrides, "model.backbone.weights=null"])
    return instantiate(cfg.model, _convert_="partial")


def train_step(module: nn.Module, size: int = 32) -> torch.Tensor:
    """One forward/backward of the training loss (main + weighted auxiliary) on a random batch of two."""
    images = torch.randn(2, 3, size, size)
    target = torch.randint(0, module.hparams.num_classes, (2, size, size))
    target[:, :4] = 255
    logits, aux_logits = module.net.forward_with_aux(images)
    loss = module.loss(logits, target)
    if aux_logits is not None:
        loss = loss + module.aux_weight * module.loss(aux_logits, target)
    loss.backward()
    assert logits.shape == (2, module.hparams.num_classes, size, size)
    return loss


def test_every_paper_preset_is_there():
    assert {"deeplabv1", "deeplabv2", "deeplabv3", "deeplabv3plus", "pspnet", "fcn", "sppnet", "smp"} <= set(PRESETS)


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("backbone", ["resnet18", "resnet101"])  # the synthetic data's and the papers' backbone
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_forward_backward_at_output_stride(preset, backbone, output_stride):
    # smp's Unet has no atrous option; DeepLabV3Plus is the smp architecture that dilates to 8 and 16.
    arch = ["model.decoder.arch=DeepLabV3Plus"] if preset == "smp" else []
    module = build_preset(preset, f"model/backbone={backbone}", f"model.backbone.output_stride={output_stride}", *arch)
    assert module.net.backbone.output_stride == output_stride
    loss = train_step(module)
    assert torch.isfinite(loss)
    for part in (module.net.backbone, module.net.decoder):
        grads = [p.grad for p in part.parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), preset


@pytest.mark.parametrize("output_stride", [8, 16])
@pytest.mark.parametrize("backbone", ["efficientnet_b0", "xception65", "mobilenet_v2"])
def test_other_backbones_under_deeplabv3plus(backbone, output_stride):
    module = build_preset("deeplabv3plus", f"model/backbone={backbone}", f"model.backbone.output_stride={output_stride}")
    features = module.net.backbone(torch.randn(1, 3, 64, 64))
    assert features[-1].shape[-1] == 64 // output_stride
    assert torch.isfinite(train_step(module))


def test_presets_use_the_papers_parts():
    expected = {
        "deeplabv1": ("LargeFOVDecoder", 8),
        "deeplabv2": ("ASPPV2Decoder", 8),
        "deeplabv3": ("DeepLabV3Decoder", 8),
        "deeplabv3plus": ("DeepLabV3PlusDecoder", 16),
        "pspnet": ("PyramidPoolingDecoder", 8),
        "fcn": ("FCNDecoder", 32),
        "sppnet": ("PyramidPoolingDecoder", 16),
        "smp": ("SMPDecoder", 32),
    }
    for preset, (decoder, output_stride) in expected.items():
        cfg = compose_config("train", [f"model={preset}", "data=cityscapes"])
        assert cfg.model.decoder._target_.endswith(decoder), preset
        assert cfg.model.backbone.output_stride == output_stride, preset
        assert cfg.model.backbone.name in ("resnet101", "resnet50"), preset
    assert compose_config("train", ["model=pspnet"]).model.aux_weight == 0.4
    assert compose_config("train", ["model=sppnet"]).model.decoder.levels == [4, 2, 1]


@pytest.mark.parametrize("preset", ["deeplabv1", "deeplabv2", "deeplabv3", "deeplabv3plus", "pspnet", "fcn"])
def test_each_paper_presets_config_names_its_paper_and_its_deliberate_differences(preset):
    from seglab.config.compose import CONFIG_DIR

    text = (Path(CONFIG_DIR) / "model" / f"{preset}.yaml").read_text()
    header = text[: text.index("defaults:")]
    assert re.search(r"\(\w+ et al\., 20\d\d\)", header), header  # the paper
    assert "Deliberate difference" in header, header  # what differs from it, and why


def test_deeplabv3_resnet101_matches_torchvision_layer_for_layer():
    from torchvision.models.segmentation import deeplabv3_resnet101

    ours = build_preset("deeplabv3", "data=cityscapes", "model/backbone=resnet101").net
    theirs = deeplabv3_resnet101(weights=None, weights_backbone=None, aux_loss=False, num_classes=19)
    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    assert count(ours) == count(theirs) == 58_630_483
    assert sorted(p.shape for p in ours.parameters()) == sorted(p.shape for p in theirs.parameters())

    def spatial_convs(model):
        return [
            (tuple(m.weight.shape), m.stride, m.dilation, m.padding)
            for m in model.modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size[0] > 1
        ]

    assert spatial_convs(ours) == spatial_convs(theirs)  # same order, rates, strides and padding


@pytest.mark.parametrize("output_stride", [8, 16])
def test_deeplabv3plus_follows_its_paper_and_matches_smp(output_stride):
    """DeepLabV3+ (Chen et al., 2018): depthwise-separable atrous convolutions in ASPP and the decoder, rates
    (6, 12, 18) at output stride 16 and doubled at 8; its size is smp's DeepLabV3Plus's with the same encoder."""
    import segmentation_models_pytorch as smp

    count = lambda model: sum(p.numel() for p in model.parameters())  # noqa: E731
    stride = f"model.backbone.output_stride={output_stride}"
    ours = build_preset("deeplabv3plus", "data=cityscapes", "model/backbone=resnet50", stride).net
    theirs = smp.DeepLabV3Plus("resnet50", encoder_weights=None, encoder_output_stride=output_stride, classes=19)
    assert abs(count(ours) / count(theirs) - 1) < 0.001  # docs/models.md: to 0.1% (the issue asked 0.5%)
    assert ours.decoder.aspp.rates == ((6, 12, 18) if output_stride == 16 else (12, 24, 36))
    depthwise = [m for m in ours.decoder.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert depthwise and all(m.groups == m.in_channels for m in depthwise)  # every 3x3 conv, ASPP and decoder
    dense = build_preset("deeplabv3plus", "data=cityscapes", "model/backbone=resnet50", stride, "model.decoder.separable=false").net
    assert 1.4 < count(dense) / count(ours) < 1.6  # separable=false: the plain 3x3 convolutions, about 1.5x the size


def test_auxiliary_loss_is_logged_in_training_and_the_checkpoint_evaluates(tmp_path):
    cfg = make_cfg(
        tmp_path,
        "experiment=smoke",
        "model=pspnet",
        "model/backbone=resnet18",
        "data.dataset.image_size=[32,32]",
        "data.dataset.lengths={train:16,val:8,test:8}",
        "trainer.max_epochs=1",
        "trainer.log_every_n_steps=1",
    )
    metrics = train(cfg)
    with open(tmp_path / "csv" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    aux_losses = [float(row["train/aux_loss_step"]) for row in rows if row.get("train/aux_loss_step")]
    assert len(aux_losses) == 2 and all(loss > 0 for loss in aux_losses)
    assert not any(key.startswith(("val/aux", "test/aux")) for key in metrics)
    state = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert any(key.startswith("net.aux_head.") for key in state)


def test_a_backbone_mistake_stops_train_py_with_one_line(tmp_path):
    result = run_in_process("train.py", "model/backbone=resnet18", "model.backbone.multi_grid=[1,2,4]", "debug=fdr", f"hydra.run.dir={tmp_path}")
    assert_one_line_error(result, "error: model.backbone.multi_grid=[1, 2, 4]: the last stage of resnet18 has 2 blocks")


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_takes_the_inference_mode(preset):
    """`inference=tta` (and slide) must reach the model of every preset, or eval.py would silently score one pass."""
    cfg = compose_config("train", [f"model={preset}", "model/backbone=resnet18", "inference=tta", "inference.scales=[0.5,1.0]"])
    module = instantiate(cfg.model, _convert_="partial")
    assert module.inference.func.__name__ == "tta_inference" and list(module.inference.keywords["scales"]) == [0.5, 1.0]
