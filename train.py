"""Train a segmentation model: ``python train.py model=deeplabv3plus data=cityscapes`` (see README)."""

from seglab.hydra_entry import hydra_entry
from seglab.train import train


@hydra_entry("train")
def main(cfg) -> float | None:
    metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))  # the value Hydra sweepers optimise


if __name__ == "__main__":
    main()
