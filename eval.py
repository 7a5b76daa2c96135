"""Evaluate a checkpoint: ``python eval.py ckpt_path=<run>/checkpoints/best.ckpt`` (see README)."""

import hydra

from seglab.config import CONFIG_DIR
from seglab.errors import exit_on_user_error
from seglab.evaluate import evaluate


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@exit_on_user_error
def main(cfg) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
