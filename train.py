"""Train a segmentation model: ``python train.py model=deeplabv3plus data=cityscapes`` (see README)."""

from pathlib import Path

import hydra

from seglab.callbacks.preemption import ctrl_c_stops_at_once
from seglab.config import CONFIG_DIR
from seglab.errors import exit_on_user_error
from seglab.train import train


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@exit_on_user_error
def main(cfg) -> float | None:
    with ctrl_c_stops_at_once(Path(cfg.paths.output_dir)):  # status 130 and the resume command (training: saves first)
        metrics = train(cfg)
    return metrics.get(cfg.get("optimized_metric"))  # the value Hydra sweepers optimise


if __name__ == "__main__":
    main()
