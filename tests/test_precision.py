"""Speed options: mixed precision (network in 16 bits, loss in float32), channels-last, torch.compile, gradient
accumulation and clipping."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from seglab.commands.train import train

from tests.helpers import RECORD_VALIDATION, TINY, assert_miou_is_recomputed, make_cfg
from tests.helpers.probes import COMPILED_GRAPHS, GradientProbe, PrecisionProbe

SMALL = ["model/backbone=resnet18", "data.dataset.image_size=[32,32]", "data.dataset.lengths={train:16,val:4,test:4}", "data.batch_size=4"]
no_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize(
    "precision, accelerator, network_dtype",
    [
        ("bf16-mixed", "cpu", torch.bfloat16),
        ("16-mixed", "cpu", torch.bfloat16),  # CPUs have no float16 AMP: Lightning runs bf16-mixed instead
        pytest.param("16-mixed", "gpu", torch.float16, marks=[pytest.mark.gpu, no_gpu]),
    ],
)
def test_mixed_precision_runs_the_network_in_16_bits_and_the_loss_in_float32(precision, accelerator, network_dtype, tmp_path):
    cfg = make_cfg(
        tmp_path, "debug=fdr", *SMALL, f"trainer.precision={precision}", f"trainer.accelerator={accelerator}",
        "model.channels_last=true", "+callbacks.probe._target_=tests.helpers.probes.PrecisionProbe", RECORD_VALIDATION,
    )  # fmt: skip
    metrics = train(cfg)
    seen = PrecisionProbe.seen
    assert seen["classifier_dtype"] == network_dtype
    assert seen["loss_logits_dtype"] == torch.float32 and seen["loss_autocast"] is False
    assert seen["conv_input_channels_last"] is True
    assert_miou_is_recomputed(metrics)


def test_images_stay_in_the_default_layout_without_channels_last(tmp_path):
    train(make_cfg(tmp_path, "debug=fdr", *SMALL, "+callbacks.probe._target_=tests.helpers.probes.PrecisionProbe"))
    assert PrecisionProbe.seen["conv_input_channels_last"] is False
    assert PrecisionProbe.seen["classifier_dtype"] == torch.float32


def test_compile_option_compiles_the_network_and_keeps_its_parameter_names(tmp_path):
    cfg = make_cfg(tmp_path, *TINY, "model.compile={backend:seglab_test_recorder}")
    compiled = instantiate(cfg.model, _convert_="partial")
    COMPILED_GRAPHS.clear()
    with torch.no_grad():
        logits = compiled.eval()(torch.randn(1, 3, 32, 32))
    assert logits.shape == (1, 5, 32, 32)
    traced_ops = {str(node.target) for graph in COMPILED_GRAPHS for node in graph.graph.nodes}
    assert any("conv2d" in op for op in traced_ops), traced_ops  # the network went through torch.compile
    plain = instantiate(make_cfg(tmp_path, *TINY).model, _convert_="partial")
    assert list(compiled.state_dict()) == list(plain.state_dict())  # checkpoints load either way


def test_compile_on_the_cpu_warns_once_that_it_is_slower(tmp_path):
    import warnings

    from seglab.tasks.semantic import CPU_COMPILE_WARNING

    def fit_warnings(*overrides: str) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            train(make_cfg(tmp_path / str(len(overrides)), "debug=fdr", *SMALL, "trainer.accelerator=cpu", *overrides))
        return [str(w.message) for w in caught if "model.compile" in str(w.message)]

    assert fit_warnings("model.compile={backend:seglab_test_recorder}") == [CPU_COMPILE_WARNING]  # once per fit
    assert fit_warnings() == []
    assert "slower" in CPU_COMPILE_WARNING and "RATIO" not in CPU_COMPILE_WARNING  # the measured ratio is filled in


def test_gradient_accumulation_and_clipping(tmp_path):
    cfg = make_cfg(
        tmp_path, *TINY, *SMALL, "trainer.max_epochs=1", "trainer.num_sanity_val_steps=0",
        "trainer.accumulate_grad_batches=2", "trainer.gradient_clip_val=0.01",
        "+callbacks.probe._target_=tests.helpers.probes.GradientProbe",
    )  # fmt: skip
    train(cfg)
    assert len(GradientProbe.norms) == 2  # 4 batches, one optimizer step per 2
    assert max(GradientProbe.norms) <= 0.01 * 1.0001, GradientProbe.norms
