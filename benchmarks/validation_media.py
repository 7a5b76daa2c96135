"""What the validation_media callback costs per validation, against the validation itself.

    python benchmarks/validation_media.py [image size, default 64] [val images, default 64]

Validates DeepLabV3+ / ResNet-18 (random weights) on the synthetic split with W&B (offline) and TensorBoard
active, three times, and prints the median time of a validation and of the callback's work in it (the
per-class table, the confusion-matrix figure, and 4 fixed images predicted and logged to both loggers).
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hydra.utils import instantiate  # noqa: E402

from seglab.config.compose import compose_config  # noqa: E402
from seglab.tracking.wandb import create_wandb_logger  # noqa: E402
from seglab.viz.validation_media import ValidationMedia  # noqa: E402


class TimedMedia(ValidationMedia):
    def __init__(self) -> None:
        super().__init__(num_images=4)
        self.seconds: list[float] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        start = time.perf_counter()
        super().on_validation_epoch_end(trainer, pl_module)
        self.seconds.append(time.perf_counter() - start)


def main() -> None:
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true")
    cfg = compose_config(
        "train", ["experiment=quickstart", f"data.dataset.image_size=[{size},{size}]", f"data.dataset.lengths={{train: 8, val: {count}, test: 8}}"]
    )
    datamodule = instantiate(cfg.data, _convert_="partial")
    datamodule.setup("validate")
    model = instantiate(cfg.model, _convert_="partial")
    media = TimedMedia()
    with tempfile.TemporaryDirectory() as run_dir:
        loggers = [create_wandb_logger(save_dir=run_dir), L.pytorch.loggers.TensorBoardLogger(run_dir)]
        trainer = L.Trainer(accelerator="cpu", logger=loggers, callbacks=[media], enable_progress_bar=False, enable_model_summary=False)
        validations = []
        for _ in range(3):
            start = time.perf_counter()
            trainer.validate(model, datamodule=datamodule, verbose=False)
            validations.append(time.perf_counter() - start)
        loggers[0].experiment.finish()
    validation, extra = statistics.median(validations), statistics.median(media.seconds)
    print(f"{count} val images of {size}x{size}, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    print(f"validation: {validation:.2f} s, of which validation_media: {extra:.2f} s ({100 * extra / validation:.1f} %)")


if __name__ == "__main__":
    main()
