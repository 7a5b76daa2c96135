"""Model export: ONNX and TorchScript files with dynamic size give PyTorch's logits, normalisation built in."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch

from seglab.checkpointing.restore import load_trained_model, training_config
from seglab.commands.export import export_model
from seglab.data.io import image_tensor
from seglab.runtime.errors import UserError

from tests.helpers import REPO, make_cfg

# Batch, height and width other than the traced 1x3x64x64, odd sizes included.
SHAPES = [(1, 3, 64, 64), (2, 3, 48, 80), (1, 3, 37, 53)]


@pytest.fixture(scope="module")
def pytorch_logits(trained_run):
    """PyTorch's logits for uint8 images put through the training pipeline's transforms."""
    ckpt = trained_run[0] / "checkpoints" / "best.ckpt"
    datamodule, module = load_trained_model(ckpt, training_config(ckpt, [], ()))
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8) for n, _, h, w in SHAPES]
    normalise = lambda image: datamodule.val_transforms({"image": image_tensor(image)})["image"]  # noqa: E731
    with torch.no_grad():
        logits = [module.net(torch.stack([normalise(image) for image in batch])).numpy() for batch in images]
    return [torch.from_numpy(batch).permute(0, 3, 1, 2).float() for batch in images], logits


def assert_same_logits(run, pytorch_logits) -> None:
    for images, expected in zip(*pytorch_logits):
        logits = run(images)  # raw 0..255 RGB: the exported model normalises itself
        assert logits.shape == expected.shape
        assert np.abs(logits - expected).max() < 1e-4


def test_onnx_export_gives_pytorchs_logits_at_any_size(trained_run, pytorch_logits, tmp_path):
    ckpt = trained_run[0] / "checkpoints" / "best.ckpt"
    path = export_model(make_cfg(tmp_path, f"ckpt_path={ckpt}", "format=onnx", config_name="export"))
    assert path == tmp_path / "model.onnx"
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert_same_logits(lambda images: session.run(None, {"image": images.numpy()})[0], pytorch_logits)


def test_export_command_writes_torchscript_with_pytorchs_logits_at_any_size(trained_run, pytorch_logits, tmp_path):
    output = tmp_path / "deploy" / "seg.pt"
    command = [sys.executable, "-m", "seglab", "export", f"ckpt_path={trained_run[0] / 'checkpoints' / 'best.ckpt'}"]
    command += ["format=torchscript", f"output={output}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "max abs difference" in result.stdout + result.stderr  # the command checks its own export too
    assert f"Export finished: {tmp_path / 'run'}\n  model       {output}  (torchscript)\n  checked     max abs difference " in result.stdout
    scripted = torch.jit.load(str(output))
    assert_same_logits(lambda images: scripted(images).detach().numpy(), pytorch_logits)


def test_unknown_format_is_a_clear_error(trained_run, tmp_path):
    with pytest.raises(UserError, match="^format=tflite: must be one of onnx, torchscript$"):
        export_model(make_cfg(tmp_path, f"ckpt_path={tmp_path / 'any.ckpt'}", "format=tflite", config_name="export"))
