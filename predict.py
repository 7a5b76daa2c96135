"""Segment images with a checkpoint: ``python predict.py ckpt_path=<ckpt> input=<images> output_dir=<dir>`` (see README)."""

import hydra

from seglab.config import CONFIG_DIR
from seglab.errors import exit_on_user_error
from seglab.predict import predict


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
@exit_on_user_error
def main(cfg) -> None:
    predict(cfg)


if __name__ == "__main__":
    main()
