"""Model export: ``python -m seglab export ckpt_path=<ckpt> format=onnx|torchscript [output=<file>]``.

The exported model has the input normalisation built in: it takes float32 RGB images ``(N, 3, H, W)`` with
values in 0..255 and returns logits ``(N, num_classes, H, W)``, with batch, height and width dynamic. It runs
whole-image inference (slide and TTA are loops around it, see :mod:`seglab.inference`).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from seglab.checkpointing.restore import REBUILT_CONFIG, load_trained_model, save_rebuilt_config, training_config
from seglab.config.compose import command_keys, run_overrides
from seglab.config.validation import check_config
from seglab.config.value_rules import PATH, integer, number, one_of, optional
from seglab.data.transforms import find_normalize
from seglab.runtime.errors import UserError
from seglab.runtime.extras import require_extra
from seglab.runtime.write_targets import check_room, check_writable_dir, explain_write_failures, state_size
from seglab.tracking.run_summary import file_row, format_summary, log_files_row, shown

log = logging.getLogger(__name__)

# Keys of the export command that are not part of the training config (the keys conf/export.yaml sets itself).
EXPORT_ONLY_KEYS = command_keys("export")
MODEL_FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
EXPORT_RULES = {
    "format": one_of(*MODEL_FORMATS),
    "output": optional(PATH),
    "opset": integer(7),
    "atol": optional(number(0)),
}
# Tracing input; height, width and batch stay dynamic in the exported graph.
TRACE_SHAPE = (1, 3, 64, 64)
# The check runs on another batch and an odd size, to catch shapes frozen at tracing time.
CHECK_SHAPE = (2, 3, 72, 104)


class DeployableSegmentor(nn.Module):
    """A segmentation network with its input normalisation built in.

    Args:
        net: maps normalised images ``(N, 3, H, W)`` to logits ``(N, C, H, W)``.
        mean, std: the per-channel normalisation of images scaled to [0, 1] (as in training).
    """

    def __init__(self, net: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of float32 RGB images with values 0..255."""
        return self.net((images - self.mean) / self.std)


def export_onnx(model: nn.Module, path: Path, opset: int = 17) -> Path:
    """Write ``model`` as ONNX with input ``image`` and output ``logits``, batch/height/width dynamic."""
    require_extra("export", "format=onnx", ("onnx",))  # the exporter needs it
    dynamic = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        # The TorchScript-based exporter (deprecated upstream, so it warns) keeps the network's input-size
        # arithmetic symbolic as it is and needs no extra package.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(TRACE_SHAPE),),
            str(path),
            dynamo=False,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": dynamic, "logits": dynamic},
            opset_version=opset,
        )
    return path


def export_torchscript(model: nn.Module, path: Path) -> Path:
    """Write ``model`` traced to TorchScript (load with ``torch.jit.load``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated upstream but still loads everywhere
        torch.jit.trace(model, torch.zeros(TRACE_SHAPE)).save(str(path))
    return path


def run_exported(path: Path, images: torch.Tensor) -> np.ndarray:
    """Logits of an exported model file (ONNX through onnxruntime, TorchScript through torch.jit)."""
    if path.suffix == ".onnx":
        require_extra("export", "checking an ONNX export (atol=null skips it)", ("onnxruntime",))
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"image": images.numpy()})[0]
    return torch.jit.load(str(path)).eval()(images).detach().numpy()


def max_difference(model: nn.Module, path: Path, shape: Sequence[int] = CHECK_SHAPE) -> float:
    """The largest absolute difference between the logits of ``model`` and of its export at ``path``."""
    images = torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        expected = model(images).numpy()
    return float(np.abs(run_exported(path, images) - expected).max())


def export_model(cfg: DictConfig) -> Path:
    """Export ``cfg.ckpt_path`` in ``cfg.format``; check it against PyTorch unless ``cfg.atol`` is null."""
    check_config(cfg, EXPORT_RULES)
    default = Path(cfg.paths.output_dir) / f"model{MODEL_FORMATS[cfg.format]}"
    path = Path(cfg.output).expanduser() if cfg.output else default
    key, fix = "output" if cfg.output else "paths.output_dir", "choose another file with output=<file>"
    check_writable_dir(path.parent, key, fix)
    ckpt_path = Path(cfg.ckpt_path).expanduser()
    train_cfg = training_config(ckpt_path, run_overrides(), EXPORT_ONLY_KEYS, trusted=cfg.trusted)
    if train_cfg.get("postprocess") is not None:
        raise UserError(
            "the exported model is the network alone (logits out); the dense CRF of postprocess=... is not part of "
            "it: drop the postprocess override and run the CRF on the exported model's softmax "
            "(seglab.inference.crf.DenseCRF)"
        )
    save_rebuilt_config(train_cfg, Path(cfg.paths.output_dir))
    datamodule, module = load_trained_model(ckpt_path, train_cfg)
    if not module.exportable:
        raise UserError(f"{ckpt_path} holds an instance model; model export covers the semantic models (logits out)")
    normalize = find_normalize(datamodule.val_transforms)
    if normalize is None:
        raise UserError(
            "export builds in the input normalisation, but data.val_transforms has no seglab.data.transforms.Normalize"
        )
    model = DeployableSegmentor(module.net, normalize.mean, normalize.std).eval()
    check_room(path.parent, state_size(model), key, "the exported model", fix)
    with explain_write_failures(path.parent):
        if cfg.format == "onnx":
            export_onnx(model, path, cfg.opset)
        else:
            export_torchscript(model, path)
    log.info("Exported %s to %s (input: float32 RGB 0..255, NCHW; output: logits)", ckpt_path, path)
    if cfg.atol is not None:
        difference = max_difference(model, path)
        if difference > cfg.atol:
            raise UserError(f"the exported model's logits differ from PyTorch's by {difference:.2e} > atol={cfg.atol}")
        shape = "x".join(map(str, CHECK_SHAPE))
        log.info("Checked against PyTorch on a %s input: max abs difference %.2e", shape, difference)
    run_dir = Path(cfg.paths.output_dir)
    log.info("%s", format_summary("Export finished", run_dir, [
        ("model", f"{shown(path, run_dir)}  ({cfg.format})"),
        ("checked", f"max abs difference {difference:.2e} from PyTorch" if cfg.atol is not None else "no (atol=null)"),
        ("checkpoint", str(ckpt_path.resolve())),
        file_row("config", run_dir / REBUILT_CONFIG, run_dir),
        log_files_row(run_dir),
    ]))  # fmt: skip
    return path


def run(cfg: DictConfig) -> None:
    """``python -m seglab export`` / ``seglab-export``: :func:`export_model`."""
    export_model(cfg)
