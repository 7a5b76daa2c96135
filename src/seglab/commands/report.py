"""``python -m seglab report model=<preset> input_size=[h,w]``: what a model costs and how far it sees.

Prints the parameters (backbone, decoder, heads), GFLOPs at ``input_size``, the output stride, the theoretical
field of view of every spatial convolution of the decoder (atrous rate r: a 3x3 kernel spans 2r+1 feature
pixels with the same 9 weights) and the effective receptive field measured from the input gradients of the
centre output pixel, optionally saved as a PNG heat map.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image, ImageOps

from seglab.config.builders import instantiate_part
from seglab.config.validation import DEVICE, SIZE, check_config
from seglab.config.value_rules import PATH, integer, number, optional
from seglab.models import Segmentor
from seglab.models.complexity import count_flops, count_parameters
from seglab.models.receptive_field import atrous_convolutions, effective_receptive_field
from seglab.runtime.devices import choose_device
from seglab.runtime.errors import UserError
from seglab.runtime.write_targets import check_writable_dir

log = logging.getLogger(__name__)

REPORT_RULES = {
    "input_size": SIZE,
    "erf_samples": integer(0),
    "erf_mass": number(above=0, maximum=1),
    "erf_png": optional(PATH),
    "device": DEVICE,
}


def model_report(cfg: DictConfig) -> dict[str, Any]:
    """Build ``cfg.model`` and measure it; return the figures :func:`format_report` prints."""
    check_config(cfg, REPORT_RULES)
    if cfg.erf_png:
        check_writable_dir(Path(cfg.erf_png).expanduser().parent, "erf_png", "choose another file with erf_png=<file>")
    input_size = tuple(cfg.input_size)
    net: Segmentor = instantiate_part(cfg.model).net
    if not isinstance(net, Segmentor):
        raise UserError(f"the model report covers the semantic presets; {type(net).__name__} is not one of them")
    report: dict[str, Any] = {
        "backbone": cfg.model.backbone.name,
        "weights": cfg.model.backbone.weights,
        "decoder": type(net.decoder).__name__,
        "input_size": input_size,
        "parameters": count_parameters(net),
        "parameters_backbone": count_parameters(net.backbone),
        "parameters_decoder": count_parameters(net.decoder),
        "parameters_heads": count_parameters(net.classifier) + (count_parameters(net.aux_head) if net.aux_head is not None else 0),
        "flops": count_flops(net, input_size),
        "output_stride": net.backbone.output_stride,
        "atrous": atrous_convolutions(net, input_size),
        "erf": None,
    }
    if cfg.erf_samples > 0:
        device = choose_device(cfg.device, "device")
        report["erf"] = effective_receptive_field(
            net.to(device), input_size, samples=cfg.erf_samples, mass=cfg.erf_mass, device=device
        )
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as a plain-text table."""
    height, width = report["input_size"]
    lines = [
        f"model             {report['backbone']} + {report['decoder']}",
        f"parameters        {report['parameters'] / 1e6:.2f} M = backbone {report['parameters_backbone']:,} + "
        f"decoder {report['parameters_decoder']:,} + heads {report['parameters_heads']:,}",
        f"GFLOPs            {report['flops'] / 1e9:.2f} at {height}x{width} (2 per multiply-add: "
        f"{report['flops'] / 2e9:.2f} GMACs)",
        f"output stride     {report['output_stride']}",
        "",
        "decoder convolutions: theoretical field of view of the kernel's taps",
        f"  {'layer':<32} {'kernel':>6} {'rate':>5} {'stride':>6} {'feature px':>10} {'input px':>9}",
    ]
    lines += [
        f"  {row.name:<32} {f'{row.kernel_size}x{row.kernel_size}':>6} {row.dilation:>5} {row.stride:>6} "
        f"{row.field_of_view:>10} {row.field_of_view_input:>9}"
        for row in report["atrous"]
    ] or ["  (none: the decoder has no spatial convolutions)"]
    erf = report["erf"]
    if erf is not None:
        lines += [
            "",
            f"effective receptive field  {erf.extent}x{erf.extent} px around the centre pixel hold "
            f"{erf.mass:.0%} of its input gradient ({height}x{width} input, backbone weights "
            f"{report['weights'] or 'random'}, decoder random)",
        ]
    return "\n".join(lines)


def save_heatmap(gradient: torch.Tensor, path: str | Path) -> Path:
    """Write a gradient map as a black-red-yellow PNG (square-root scaled so the tails stay visible)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scaled = gradient.clamp_min(0).sqrt()
    grey = (255 * scaled / scaled.max().clamp_min(1e-12)).round().to(torch.uint8).numpy()
    ImageOps.colorize(Image.fromarray(np.ascontiguousarray(grey), mode="L"), "black", "yellow", mid="red").save(path)
    return path


def run(cfg: DictConfig) -> None:
    """``python -m seglab report`` / ``seglab-report``: print the report (and save the heat map with ``erf_png``)."""
    report = model_report(cfg)
    print(format_report(report), flush=True)
    if cfg.erf_png and report["erf"] is not None:
        log.info("Effective receptive field heat map: %s", save_heatmap(report["erf"].gradient, cfg.erf_png))

