"""Instance overlays: each instance in its own colour, boxed and captioned with its class and score."""

from __future__ import annotations

import numpy as np
import torch

from seglab.instance_overlay import draw_instances, instance_colours


def two_squares() -> tuple[np.ndarray, dict]:
    image = np.full((64, 96, 3), 40, dtype=np.uint8)
    masks = torch.zeros(3, 64, 96, dtype=torch.bool)
    masks[0, 20:50, 5:35] = True
    masks[1, 20:50, 55:85] = True  # masks[2] is empty: nothing to draw
    instances = {"masks": masks, "labels": torch.tensor([1, 1, 2]), "scores": torch.tensor([0.9, 0.4, 0.3])}
    return image, instances


def test_each_instance_gets_its_own_colour_and_the_rest_of_the_image_stays():
    image, instances = two_squares()
    before = image.copy()
    out = draw_instances(image, instances, class_names=["background", "car", "bus"], alpha=0.5)
    assert np.array_equal(image, before) and out.shape == image.shape and out.dtype == np.uint8
    colours = instance_colours(2)
    for k, colour in enumerate(colours):
        inside = out[35, 20 if k == 0 else 70]  # well inside the mask, away from box and caption
        expected = (0.5 * np.array(colour) + 0.5 * 40).astype(int)
        assert np.abs(inside.astype(int) - expected).max() <= 1
    assert colours[0] != colours[1]
    assert (out[60, 40] == 40).all() and (out[5, 45] == 40).all()  # neither mask, box nor caption there


def test_captions_name_class_and_score():
    image, instances = two_squares()
    with_scores = draw_instances(image, instances, ["background", "car", "bus"])
    without_scores = draw_instances(image, {"masks": instances["masks"], "labels": instances["labels"]}, ["background", "car", "bus"])
    other_names = draw_instances(image, instances, ["background", "person", "bus"])
    caption_rows = slice(20, 32)  # captions sit inside the top of each box
    assert not np.array_equal(with_scores[caption_rows], without_scores[caption_rows])
    assert not np.array_equal(with_scores[caption_rows], other_names[caption_rows])
    assert np.array_equal(with_scores[40:], without_scores[40:])  # masks and boxes are the same


def test_no_instance_leaves_a_copy_of_the_image():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    empty = {"masks": np.zeros((0, 8, 8), dtype=bool), "labels": np.zeros(0, dtype=int)}
    out = draw_instances(image, empty)
    assert np.array_equal(out, image) and out is not image
