"""Train a segmentation model: ``python train.py model=deeplabv3plus data=cityscapes`` (see README)."""

from pathlib import Path

from seglab.checkpointing.preemption import ctrl_c_stops_at_once
from seglab.commands.entry import hydra_entry
from seglab.commands.train import train


@hydra_entry("train")
def main(cfg) -> float | None:
    with ctrl_c_stops_at_once(Path(cfg.paths.output_dir)):  # status 130 and the resume command (training: saves first)
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))  # the value Hydra sweepers optimise


if __name__ == "__main__":
    main()
