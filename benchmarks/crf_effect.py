"""What the dense CRF and the v3+ decoder do to mIoU, trimap mIoU and Boundary IoU: train, then evaluate.

    python benchmarks/crf_effect.py [--out outputs/crf_effect] [--epochs 5] [--cityscapes-epochs 10] [--threads 1]

Trains, with train.py as a user would, on the built-in synthetic shapes (64 x 64 images, 512 for training,
64 for validation; ResNet-18 from random weights, as data=synthetic sets):

- DeepLab v1 LargeFOV at output stride 8 (model=deeplabv1),
- DeepLabV3 (model=deeplabv3) and DeepLabV3+ (model=deeplabv3plus), both at output stride 16,

and DeepLab v1 on the Cityscapes-format tree the tests generate (tests/cityscapes_tree.py: 64 x 128 images).
Each best checkpoint is then scored with eval.py on the validation split, once with postprocess=densecrf at
DeepLab v1's parameters and once with the appearance kernel scaled to the image (theta_alpha=16, i.e. 121 x
64 / 500: DeepLab tuned 121 on PASCAL VOC's ~500-pixel images). One eval pass scores the network's own
prediction too (``network/...``), so each row pair below is the same logits with and without the CRF. Prints
one table of mIoU, trimap mIoU per band width and Boundary IoU; each eval run dir holds trimap_curve.png.
A run dir that already holds checkpoints/best.ckpt is not trained again, nor an eval dir with metrics.json
evaluated again (delete them to rerun).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Band widths of the trimap columns (the metrics.trimap_widths default).
WIDTHS = ("1", "2", "5", "10", "20", "40")
# CRF settings to compare: overrides of the postprocess group's densecrf option.
CRF_VARIANTS = {
    "densecrf (DeepLab v1: theta_alpha 121)": [],
    "densecrf, theta_alpha 16 (scaled to 64 px)": ["postprocess.theta_alpha=16"],
}


def run(script: str, *overrides: str, threads: int) -> float:
    """Run ``script`` with ``overrides``; return its CPU seconds (children's user + system time)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO / "src")}
    before = os.times()
    subprocess.run([sys.executable, str(REPO / script), *overrides], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    after = os.times()
    return (after.children_user - before.children_user) + (after.children_system - before.children_system)


def train_once(run_dir: Path, overrides: list[str], threads: int) -> Path:
    checkpoint = run_dir / "checkpoints" / "best.ckpt"
    if not checkpoint.exists():
        seconds = run("train.py", *overrides, "logger=csv", f"hydra.run.dir={run_dir}", threads=threads)
        print(f"  trained {run_dir.name} in {seconds:.0f} CPU s", flush=True)
    return checkpoint


def evaluate(checkpoint: Path, run_dir: Path, overrides: list[str], threads: int) -> dict:
    if not (run_dir / "metrics.json").exists():
        run("eval.py", f"ckpt_path={checkpoint}", "postprocess=densecrf", *overrides, f"hydra.run.dir={run_dir}",
            threads=threads)  # fmt: skip
    return json.loads((run_dir / "metrics.json").read_text())


def row(label: str, scores: dict, trimap: dict) -> str:
    cells = [f"{scores['mIoU']:.3f}", *(f"{trimap[w]:.3f}" for w in WIDTHS)]
    boundary = scores.get("boundary_mIoU")
    return f"| {label} | " + " | ".join(cells) + f" | {'-' if boundary is None else f'{boundary:.3f}'} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO / "outputs" / "crf_effect")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--cityscapes-epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    out = args.out.resolve()
    sys.path.insert(0, str(REPO))
    from tests.cityscapes_tree import write_cityscapes_tree

    cityscapes_root = out / "cityscapes_tree"
    if not cityscapes_root.exists():
        write_cityscapes_tree(cityscapes_root, per_city=8)
    common = ["trainer.accelerator=cpu", "data.num_workers=0"]
    runs = {
        "synthetic, DeepLab v1 LargeFOV (OS 8)": ["model=deeplabv1", f"trainer.max_epochs={args.epochs}"],
        "synthetic, DeepLabV3 (OS 16)": ["model=deeplabv3", f"trainer.max_epochs={args.epochs}"],
        "synthetic, DeepLabV3+ (OS 16)": ["model=deeplabv3plus", f"trainer.max_epochs={args.epochs}"],
        "Cityscapes tree, DeepLab v1 LargeFOV (OS 8)": [
            "model=deeplabv1", "data=cityscapes", f"data.root={cityscapes_root}", "model/backbone=resnet18",
            "model.backbone.weights=null", "data.crop_size=[32,64]", "data.batch_size=4",
            f"trainer.max_epochs={args.cityscapes_epochs}",
        ],
    }  # fmt: skip
    print(f"{time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{args.threads} thread(s) a process, load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    header = "| run | mIoU | " + " | ".join(f"trimap {w}" for w in WIDTHS) + " | boundary mIoU |"
    lines = [header, "|" + " --- |" * (len(WIDTHS) + 3)]
    for index, (name, overrides) in enumerate(runs.items()):
        print(name, flush=True)
        run_dir = out / f"train{index}"
        checkpoint = train_once(run_dir, [*overrides, *common], args.threads)
        for variant_index, (variant, crf) in enumerate(CRF_VARIANTS.items()):
            scores = evaluate(checkpoint, out / f"eval{index}_{variant_index}", crf, args.threads)
            if variant_index == 0:
                network = {name: scores["network"][name] for name in ("mIoU", "boundary_mIoU")}
                network_trimap = {w: scores["network"][f"trimap_mIoU/{w}"] for w in WIDTHS}
                lines.append(row(f"{name}, no CRF", network, network_trimap))
            lines.append(row(f"{name}, {variant}", scores, scores["trimap_mIoU"]))
            print("\n".join(lines[-2 if variant_index == 0 else -1 :]), flush=True)
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
