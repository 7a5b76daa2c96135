"""Training speed of each semantic recipe's model: images/s, peak GPU memory and model FLOPs utilisation (MFU).

    python benchmarks/recipe_speed.py [--iterations 300] [--compile both] [--recipes NAME ...] [--json out.json]
    python benchmarks/recipe_speed.py --cpu     # tiny: 64x64, batch 2, 2 iterations, no compile (what CI runs)

Each recipe in conf/experiment/ whose model is semantic is built with random weights (its classes, output stride
and auxiliary head) and trained on synthetic batches of the recipe's crop and per-GPU batch size: forward, loss
plus aux_weight x auxiliary loss, backward and an optimizer step of the recipe's optimizer, in bf16-mixed autocast
with channels_last memory, without and with torch.compile (forward and loss compiled). Without CUDA the CPU
mode is used.

The FLOPs of one training step (forward + backward) are counted by torch's FlopCounterMode (2 per multiply-add,
convolutions and matrix products). MFU = achieved FLOP/s / the card's peak dense bf16 FLOP/s, taken from
PEAK_BF16_TFLOPS by device name or from --peak-tflops (on the CPU MFU is reported only with --peak-tflops).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path
from typing import Any, Callable

import torch
from hydra.utils import instantiate
from torch.utils.flop_counter import FlopCounterMode

from seglab.config.compose import CONFIG_DIR, compose_config

# Peak dense (no sparsity) bf16 tensor-core TFLOP/s from the vendors' data sheets; first substring match of the
# device name wins, so the more specific names come first.
PEAK_BF16_TFLOPS = [
    ("H200", 989.0),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.0),
    ("A100", 312.0),
    ("L40S", 362.0),
    ("L4", 121.0),
    ("A10", 125.0),
]


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16_TFLOPS if key in name), None)


def semantic_recipes() -> list[str]:
    """The experiment configs that train a semantic model (instance recipes, the smoke and the first run left out)."""
    names = sorted(path.stem for path in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
    return [
        name
        for name in names
        if name not in ("smoke", "quickstart")
        and compose_config("train", [f"experiment={name}"]).model._target_.endswith("SemanticSegmentationModule")
    ]


def make_forward_loss(module: torch.nn.Module, device_type: str, bf16: bool) -> Callable:
    """Autocast forward of ``module.net`` and the recipe's loss, plus ``aux_weight`` x the auxiliary head's loss."""
    net, loss_fn, aux_weight = module.net, module.loss, module.aux_weight

    def forward_loss(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=bf16):
            logits, aux_logits = net.forward_with_aux(images)
            loss = loss_fn(logits, target)
            if aux_logits is not None:
                loss = loss + aux_weight * loss_fn(aux_logits, target)
        return loss

    return forward_loss


def count_training_flops(module: torch.nn.Module, images: torch.Tensor, target: torch.Tensor) -> int:
    """FLOPs of one forward + backward, counted on a copy on the meta device (shapes only, no computation)."""
    meta_module = copy.deepcopy(module).to("meta").train()
    forward_loss = make_forward_loss(meta_module, "cpu", bf16=False)
    counter = FlopCounterMode(display=False)
    with counter:
        forward_loss(images.to("meta"), target.to("meta")).backward()
    return counter.get_total_flops()


def make_step(
    module: torch.nn.Module, optimizer_factory: Callable, device: torch.device, bf16: bool, compile_model: bool
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """One training step: forward + loss (compiled with ``compile_model``), backward, optimizer step."""
    forward_loss = make_forward_loss(module, device.type, bf16)
    forward = torch.compile(forward_loss) if compile_model else forward_loss
    optimizer = optimizer_factory(module.net.parameters())

    def step(images: torch.Tensor, target: torch.Tensor) -> None:
        forward(images, target).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    recipe: str,
    device: torch.device,
    size: tuple[int, int] | None,
    batch_size: int | None,
    iterations: int,
    warmup: int,
    compile_model: bool,
    bf16: bool,
    peak: float | None,
) -> dict[str, Any]:
    cfg = compose_config("train", [f"experiment={recipe}", "data.backbone_weights=null"])
    height, width = size or tuple(cfg.data.crop_size)
    batch = batch_size or cfg.data.batch_size
    module = instantiate(cfg.model, _convert_="partial")
    optimizer_factory = instantiate(cfg.optimizer)
    module.to(device=device, memory_format=torch.channels_last).train()
    images = torch.randn(batch, 3, height, width, device=device).contiguous(memory_format=torch.channels_last)
    target = torch.randint(0, cfg.data.num_classes, (batch, height, width), device=device)

    flops_per_step = count_training_flops(module, images, target)  # what the model computes, whatever compile fuses

    step = make_step(module, optimizer_factory, device, bf16, compile_model)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):  # compilation and cuDNN autotuning happen here
        step(images, target)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        step(images, target)
    synchronize(device)
    seconds = time.perf_counter() - start

    achieved = flops_per_step * iterations / seconds / 1e12
    row = {
        "recipe": recipe,
        "decoder": cfg.model.decoder._target_.rsplit(".", 1)[-1],
        "backbone": cfg.model.backbone.name,
        "output_stride": cfg.model.backbone.output_stride,
        "crop": [height, width],
        "batch_size": batch,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": "bf16-mixed" if bf16 else "32-true",
        "channels_last": True,
        "compile": compile_model,
        "iterations": iterations,
        "images_per_s": batch * iterations / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "train_flops_per_image": flops_per_step / batch,
        "achieved_tflops": achieved,
        "peak_tflops": peak,
        "mfu": achieved / peak if peak else None,
    }
    del step, module, images, target
    if compile_model:
        torch._dynamo.reset()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def format_row(row: dict[str, Any]) -> str:
    memory = "-" if row["peak_memory_gib"] is None else f"{row['peak_memory_gib']:.1f}"
    mfu = "-" if row["mfu"] is None else f"{100 * row['mfu']:.1f}%"
    return (
        f"{row['recipe']:<30} {'yes' if row['compile'] else 'no':>7} {row['images_per_s']:>9.2f} {memory:>9} "
        f"{row['train_flops_per_image'] / 1e9:>12.1f} {row['achieved_tflops']:>8.3f} {mfu:>6}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="tiny CPU run (automatic without CUDA)")
    parser.add_argument("--recipes", nargs="+", help="experiment names (default: every semantic recipe)")
    parser.add_argument("--iterations", type=int, help="timed steps (default: 300 on a GPU, 2 on the CPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default: 20 on a GPU, 1 on the CPU)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="default: the recipe's crop")
    parser.add_argument("--batch-size", type=int, help="default: the recipe's per-GPU batch size")
    parser.add_argument("--compile", choices=["off", "on", "both"], help="default: both on a GPU, off on the CPU")
    parser.add_argument("--precision", choices=["bf16-mixed", "32-true"], default="bf16-mixed")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak TFLOP/s (default: PEAK_BF16_TFLOPS)")
    parser.add_argument("--json", type=Path, help="also write the rows as a JSON list here")
    args = parser.parse_args()

    cpu = args.cpu or not torch.cuda.is_available()
    device = torch.device("cpu" if cpu else "cuda")
    if cpu:
        size, batch_size = tuple(args.size or (64, 64)), args.batch_size or 2
        iterations, warmup = args.iterations or 2, args.warmup if args.warmup is not None else 1
    else:
        size, batch_size = tuple(args.size) if args.size else None, args.batch_size
        iterations, warmup = args.iterations or 300, args.warmup if args.warmup is not None else 20
        torch.backends.cudnn.benchmark = True
    compile_modes = {"off": [False], "on": [True], "both": [False, True]}[args.compile or ("off" if cpu else "both")]
    peak = peak_tflops(device, args.peak_tflops)

    machine = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"device: {machine} ({torch.get_num_threads()} threads), torch {torch.__version__}, {args.precision}, "
          f"channels_last, {iterations} timed steps after {warmup}, peak {peak or '-'} TFLOP/s")
    print(f"{'recipe':<30} {'compile':>7} {'images/s':>9} {'peak GiB':>9} {'GFLOP/image':>12} {'TFLOP/s':>8} {'MFU':>6}")
    rows = []
    for recipe in args.recipes or semantic_recipes():
        for compile_model in compile_modes:
            row = measure(recipe, device, size, batch_size, iterations, warmup, compile_model,
                          args.precision == "bf16-mixed", peak)
            print(format_row(row), flush=True)
            rows.append(row)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
