"""Segment images with a checkpoint: ``python predict.py ckpt_path=<ckpt> input=<images> output_dir=<dir>`` (see README)."""

from seglab.commands.checkpoint_overrides import checkpoint_command
from seglab.commands.predict import PREDICT_ONLY_KEYS, predict


@checkpoint_command("predict", PREDICT_ONLY_KEYS)
def main(cfg) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
