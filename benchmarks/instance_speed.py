"""What the instance models cost on this machine: a training step of each family, and Panoptic-DeepLab's
post-processing of a Cityscapes-sized image.

    python benchmarks/instance_speed.py [--steps 3] [--threads 2]

Training steps: batch of 8 synthetic 64x64 images, ResNet-18, random weights, each preset's defaults (Mask R-CNN:
torchvision's 512 sampled RoIs per image), forward + backward + optimizer step, median of ``--steps`` after one
warm-up. Post-processing: perfect network outputs (one-hot logits, the target heatmap and offsets) of a 1024x2048
image holding 60 instances of 8 thing classes, as in a Cityscapes street scene.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from hydra.utils import instantiate

from seglab.config.builders import build_datamodule
from seglab.config.compose import compose_config
from seglab.data.instances import make_instances, tidy_instances
from seglab.models.panoptic_deeplab.postprocess import panoptic_segmentation
from seglab.models.panoptic_deeplab.targets import panoptic_targets


def training_step_seconds(preset: str, steps: int) -> float:
    model = "experiment=panoptic_deeplab" if preset == "panoptic_deeplab" else f"model={preset}"  # the paper's loss
    cfg = compose_config(
        "train", [model, "model/backbone=resnet18", "model.backbone.weights=null", "data.dataset.image_size=[64,64]", "data.batch_size=8"]
    )
    datamodule = build_datamodule(cfg)  # with the instance targets the task asks for
    datamodule.setup("fit")
    module = instantiate(cfg.model, _convert_="partial")
    optimizer = instantiate(cfg.optimizer)(module.parameters())
    batch = next(iter(datamodule.train_dataloader()))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        loss = sum(module.training_losses(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def street_scene(height: int = 1024, width: int = 2048, instances: int = 60, seed: int = 0):
    """A semantic mask (stuff class 0, thing classes 11-18 as Cityscapes' train ids) with rectangular instances."""
    generator = torch.Generator().manual_seed(seed)
    semantic = torch.zeros(height, width, dtype=torch.long)
    masks = torch.zeros(instances, height, width, dtype=torch.bool)
    labels = []
    for k in range(instances):
        h, w = (int(v) for v in torch.randint(20, 200, (2,), generator=generator))
        y, x = int(torch.randint(0, height - h, (1,), generator=generator)), int(torch.randint(0, width - w, (1,), generator=generator))
        masks[k, y : y + h, x : x + w] = True
        masks[:k, y : y + h, x : x + w] = False  # later instances occlude earlier ones
        labels.append(11 + k % 8)
        semantic[y : y + h, x : x + w] = labels[-1]
    return semantic, tidy_instances(make_instances(masks, labels, [False] * instances))  # drops hidden ones


def postprocess_seconds(repeats: int) -> tuple[float, int]:
    semantic, instances = street_scene()
    targets = panoptic_targets(semantic, instances, list(range(11, 19)))
    logits = torch.nn.functional.one_hot(semantic, 19).permute(2, 0, 1).float() * 10
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        prediction = panoptic_segmentation(logits, targets["center"], targets["offsets"], list(range(11, 19)))
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(prediction["masks"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} torch threads, torch {torch.__version__}")
    for preset in ("panoptic_deeplab", "maskrcnn"):
        print(f"training step, model={preset}, 8 x 64x64, ResNet-18: {training_step_seconds(preset, args.steps):.2f} s")
    seconds, found = postprocess_seconds(args.steps)
    print(f"Panoptic-DeepLab post-processing, 1024x2048, {found} instances found: {seconds:.2f} s")


if __name__ == "__main__":
    main()
