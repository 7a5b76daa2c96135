"""Evaluate a checkpoint: ``python eval.py ckpt_path=<run>/checkpoints/best.ckpt`` (see README)."""

from seglab.hydra_entry import hydra_entry
from seglab.evaluate import evaluate


@hydra_entry("eval")
def main(cfg) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
