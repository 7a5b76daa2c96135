"""Segment images with a checkpoint: ``python predict.py ckpt_path=<ckpt> input=<images> output_dir=<dir>`` (see README)."""

from seglab.hydra_entry import hydra_entry
from seglab.predict import predict


@hydra_entry("predict")
def main(cfg) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
