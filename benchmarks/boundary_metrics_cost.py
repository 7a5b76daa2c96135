"""What the boundary metrics add to a validation: CPU time of their updates against the network's forward pass.

    python benchmarks/boundary_metrics_cost.py [--repeats 5] [--threads 1]

Two cases, both with the default metrics options (trimap widths 1, 2, 5, 10, 20, 40 and Boundary IoU at 0.02 of
the diagonal):

- the default run (``python train.py``: DeepLabV3+ / ResNet-18 on the synthetic shapes), one validation batch of
  32 images of 64 x 64: the network's whole-image forward pass, the confusion matrix, the two boundary metrics,
  and the whole validation step with and without them;
- one Cityscapes-sized label map (1024 x 2048, 19 classes, a prediction with errors): the metrics alone (the
  network's forward pass at that size costs far more, seconds on a CPU).

Prints the median CPU time (``time.process_time``) of ``--repeats`` runs, which a busy machine disturbs less than
wall time.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings

import torch
import torch.nn.functional as F

from seglab.config.builders import build_datamodule, build_model
from seglab.config.compose import compose_config
from seglab.metrics import SegmentationMetrics
from seglab.metrics.boundary import BoundaryIoU, TrimapMIoU


def cpu_seconds(run, repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return statistics.median(times)


def metric_costs(preds: torch.Tensor, target: torch.Tensor, classes: int, repeats: int) -> dict[str, float]:
    metrics = {
        "confusion matrix (mIoU)": SegmentationMetrics(classes),
        "trimap mIoU, 6 widths": TrimapMIoU(classes),
        "Boundary IoU": BoundaryIoU(classes),
    }
    return {name: cpu_seconds(lambda m=metric: m.update(preds, target), repeats) for name, metric in metrics.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{torch.get_num_threads()} torch thread(s), load average {os.getloadavg()[0]:.1f}; median CPU s")  # fmt: skip

    cfg = compose_config("train", [])
    datamodule = build_datamodule(cfg)
    datamodule.setup("validate")
    model = build_model(cfg, datamodule).eval()
    batch = next(iter(datamodule.val_dataloader()))
    images, target = batch["image"], batch["mask"].long()
    with torch.no_grad():
        forward = cpu_seconds(lambda: model.inference(model.net, images), args.repeats)
        preds = model.inference(model.net, images).argmax(1)
    print(f"default run, one validation batch {tuple(images.shape)}:")
    print(f"  {'network forward (whole image)':<28} {forward:8.4f}")
    for name, seconds in metric_costs(preds, target, 5, args.repeats).items():
        print(f"  {name:<28} {seconds:8.4f}  ({100 * seconds / forward:.1f} % of the forward pass)")
    off = compose_config("train", ["metrics.trimap_widths=[]", "metrics.boundary_dilation_ratio=null"])
    steps = {"with boundary metrics": model, "without (metrics.trimap_widths=[] ...=null)": build_model(off, datamodule).eval()}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a Trainer
        step_seconds = {name: cpu_seconds(lambda m=m: m.validation_step(batch, 0), args.repeats) for name, m in steps.items()}
    for name, seconds in step_seconds.items():
        print(f"  validation step, {name:<44} {seconds:8.4f}")
    with_metrics, without = step_seconds.values()
    print(f"  the boundary metrics add {100 * (with_metrics / without - 1):.0f} % to the validation step")

    generator = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 19, (1, 1, 16, 32), generator=generator).float()
    big_target = F.interpolate(blocks, size=(1024, 2048), mode="nearest")[:, 0].long()
    wrong = torch.rand(big_target.shape, generator=generator) < 0.1
    big_preds = torch.where(wrong, torch.randint(0, 19, big_target.shape, generator=generator), big_target)
    print("one 1024 x 2048 label map, 19 classes:")
    for name, seconds in metric_costs(big_preds, big_target, 19, args.repeats).items():
        print(f"  {name:<28} {seconds:8.4f}")


if __name__ == "__main__":
    main()
