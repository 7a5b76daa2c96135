"""The tiny settings tests train with, and the lists of presets they cover."""

from __future__ import annotations

from pathlib import Path

from seglab.config.compose import CONFIG_DIR

REPO = Path(__file__).resolve().parents[2]

# The tiny, fast settings every training test starts from (DeepLabV3+ / ResNet-18 on 64x64 synthetic images).
TINY = ["experiment=smoke", "logger=csv"]
# Seconds-long runs for the logger and sweep tests: a 2.5M-parameter model on 32x32 images, two steps per epoch,
# every step logged.
QUICK = [
    "model/backbone=mobilenet_v2",
    "model.decoder.out_channels=32",
    "data.dataset.image_size=[32,32]",
    "data.dataset.lengths={train: 16, val: 8, test: 8}",
    "trainer.max_epochs=1",
    "trainer.log_every_n_steps=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.accelerator=cpu",
]
# Two steps on 32x32 images: 8 training images in batches of 4, 4 validation images.
TINY_INSTANCES = [
    "data.dataset.image_size=[32,32]",
    "data.dataset.lengths={train:8,val:4,test:4}",
    "data.batch_size=4",
    "trainer.max_epochs=1",
    "trainer.num_sanity_val_steps=0",
    "trainer.log_every_n_steps=1",
    "trainer.accelerator=cpu",
    "logger=csv",
]
# torchvision's Mask R-CNN samples 512 RoIs per training image and keeps 1000 proposals per test image: far more
# than 32x32 images need, and most of a CPU step.
SMALL_DETECTOR = [
    "+model.detector_options.box_batch_size_per_image=16",
    "+model.detector_options.rpn_post_nms_top_n_train=100",
    "+model.detector_options.rpn_post_nms_top_n_test=50",
    "model.detections_per_image=10",
    "model.anchor_sizes=[8,16,32,64,128]",
]
# The semantic presets (the instance ones are tested in test_instance_training.py).
PRESETS = sorted(
    path.stem for path in (Path(CONFIG_DIR) / "model").glob("*.yaml") if "SemanticSegmentationModule" in path.read_text()
)
