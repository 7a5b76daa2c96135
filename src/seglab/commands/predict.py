"""``predict(cfg)``: segment arbitrary images (a file, a folder or a glob) with a trained checkpoint; instance
models also find the objects in them."""

from __future__ import annotations

import glob
import logging
from pathlib import Path

from omegaconf import DictConfig
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from seglab.checkpointing.restore import REBUILT_CONFIG, load_trained_model, save_rebuilt_config, training_config
from seglab.config.compose import command_keys, run_overrides
from seglab.config.validation import DEVICE, PROBABILITY, check_config, inference_modes
from seglab.config.value_rules import PATH
from seglab.data.io import read_image
from seglab.runtime.devices import choose_device
from seglab.runtime.errors import UserError
from seglab.runtime.write_targets import check_writable_dir, explain_write_failures
from seglab.tracking.run_summary import file_row, format_summary, log_files_row

log = logging.getLogger(__name__)

# Keys of the predict command that are not part of the training config (the keys conf/predict.yaml sets itself).
PREDICT_ONLY_KEYS = command_keys("predict")
PREDICT_RULES = {
    "input": PATH,
    "output_dir": PATH,
    "predict.mode": inference_modes(),
    "predict.device": DEVICE,
    "predict.overlay_alpha": PROBABILITY,
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")


def find_inputs(pattern: str) -> list[Path]:
    """The image files ``pattern`` names: one file, the images directly in a folder, or a glob's matches."""
    path = Path(pattern).expanduser()
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        if len(images) < len(files):
            log.info("Skipping %d files in %s that are not images by their suffix", len(files) - len(images), path)
    else:
        images = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not images:
        raise UserError(f"input={pattern} names no image file; give an image, a folder of images or a glob ('photos/*.jpg')")
    stems: dict[str, Path] = {}
    for image in images:
        if image.stem in stems:
            raise UserError(f"inputs {stems[image.stem]} and {image} have the same name; their outputs would collide")
        stems[image.stem] = image
    return images


def predict(cfg: DictConfig) -> list[Path]:
    """Write ``<stem>_mask.png`` and ``<stem>_color.png`` for every input image (instance models:
    ``<stem>_instances.png`` and ``<stem>_instances.json``): the task's ``write_image_prediction``; return the files written.

    Every readable image is segmented; unreadable ones are reported by name, and a :class:`UserError` listing
    them is raised at the end (so the exit code says whether any failed).
    """
    check_config(cfg, PREDICT_RULES)
    ckpt_path = Path(cfg.ckpt_path).expanduser()
    inputs = find_inputs(str(cfg.input))
    out_dir = check_writable_dir(cfg.output_dir, "output_dir", "choose another with output_dir=<dir>")
    train_cfg = training_config(
        ckpt_path, run_overrides(), PREDICT_ONLY_KEYS, mode=cfg.predict.mode, trusted=cfg.trusted
    )
    save_rebuilt_config(train_cfg, Path(cfg.paths.output_dir))
    datamodule, model = load_trained_model(ckpt_path, train_cfg)
    model.check_inference_mode("predict.mode", cfg.predict.mode)
    device = choose_device(cfg.predict.device, "predict.device")
    model.to(device)

    written: list[Path] = []
    failed: list[Path] = []
    with logging_redirect_tqdm(), explain_write_failures(out_dir):
        for path in tqdm(inputs, desc=f"segmenting ({cfg.predict.mode})", unit="image"):
            try:
                image = read_image(path)
            except UserError as err:
                log.error("%s", err)
                failed.append(path)
                continue
            written += model.write_image_prediction(
                image, datamodule.val_transforms, out_dir, path.stem, palette=datamodule.palette,
                overlay_alpha=cfg.predict.overlay_alpha,
            )
    log.info("Segmented %d of %d images into %s", len(inputs) - len(failed), len(inputs), out_dir)
    log.info("%s", format_summary("Prediction finished", out_dir, [
        ("outputs", f"{len(written)} files for {len(inputs) - len(failed)} images ({kinds(written)})"),
        ("checkpoint", str(ckpt_path.resolve())),
        file_row("config", Path(cfg.paths.output_dir) / REBUILT_CONFIG, out_dir),
        log_files_row(Path(cfg.paths.output_dir), out_dir),
    ]))  # fmt: skip
    if failed:
        raise UserError(
            f"{len(failed)} of {len(inputs)} inputs could not be read and were skipped: "
            + ", ".join(str(p) for p in failed)
            + f" (the others were written to {out_dir})"
        )
    return written


def kinds(written: list[Path]) -> str:
    """``*_mask.png, *_color.png``: the kinds of files written, by the part of their names after the image's stem."""
    return ", ".join(dict.fromkeys(f"*_{path.name.rsplit('_', 1)[-1]}" for path in written))


def run(cfg: DictConfig) -> None:
    """``python predict.py`` / ``seglab-predict``: :func:`predict`."""
    predict(cfg)
