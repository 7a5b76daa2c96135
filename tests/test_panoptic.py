"""Panoptic-DeepLab targets against hand-computed values, its post-processing on perfect outputs, and PQ."""

from __future__ import annotations

import math

import pytest
import torch

from seglab.data.datasets import SyntheticShapes
from seglab.data.instances import make_instances
from seglab.metrics.instance import MaskAveragePrecision
from seglab.metrics.panoptic import PanopticMetrics, panoptic_target
from seglab.models.instance.panoptic_postprocess import find_instance_centers, panoptic_segmentation
from seglab.models.instance.panoptic_targets import panoptic_targets

THINGS = [1, 2]


def one_instance_image():
    """16x20 image: a 4x6 instance of class 1 (rows 2-5, columns 3-8), a crowd region of class 2 (rows 10-11,
    columns 0-3), a stuff instance of class 3 (rows 12-13, columns 10-13) and void at (15, 19)."""
    semantic = torch.zeros(16, 20, dtype=torch.long)
    masks = torch.zeros(3, 16, 20, dtype=torch.bool)
    masks[0, 2:6, 3:9] = True
    masks[1, 10:12, 0:4] = True
    masks[2, 12:14, 10:14] = True
    semantic[masks[0]], semantic[masks[1]], semantic[masks[2]] = 1, 2, 3
    semantic[15, 19] = 255
    return semantic, make_instances(masks, [1, 2, 3], [False, True, False])


def test_heatmap_offsets_and_weights_match_hand_computed_values():
    semantic, instances = one_instance_image()
    targets = panoptic_targets(semantic, instances, THINGS, sigma=2.0, small_instance_area=25, small_instance_weight=3.0)
    center, offsets = targets["center"][0], targets["offsets"]
    # Mass centre (3.5, 5.5): the Gaussian peaks at the nearest pixel (4, 6).
    assert center[4, 6] == 1.0
    assert center[4, 7] == pytest.approx(math.exp(-1 / 8))  # d^2 = 1, 2 sigma^2 = 8
    assert center[2, 4] == pytest.approx(math.exp(-8 / 8))  # d^2 = 4 + 4
    assert center[4, 12] == pytest.approx(math.exp(-36 / 8))  # 3 sigma away: still inside the window
    assert center[4, 13] == 0.0 and center[11, 6] == 0.0  # beyond 3 sigma: cut off
    assert center.max() == 1.0 and (center == 1.0).sum() == 1  # the crowd region and stuff have no centre
    # Offsets point from each pixel to the exact mass centre, (dy, dx).
    assert offsets[:, 2, 3].tolist() == [1.5, 2.5]
    assert offsets[:, 5, 8].tolist() == [-1.5, -2.5]
    assert (offsets[:, ~instances["masks"][0].bool()] == 0).all()
    assert torch.equal(targets["offset_weights"][0], instances["masks"][0].float())  # thing, not crowd
    # No heatmap loss on void and crowd pixels; stuff pixels count (the heatmap is 0 there).
    center_weights = targets["center_weights"][0]
    assert center_weights[15, 19] == 0 and (center_weights[10:12, 0:4] == 0).all()
    assert center_weights[12, 10] == 1 and center_weights.sum() == 16 * 20 - 1 - 8
    # The 24-pixel instance is small (< 25): weight 3 in the semantic loss; everything else 1.
    weights = targets["semantic_weights"]
    assert (weights[2:6, 3:9] == 3).all() and weights.sum() == 16 * 20 + 2 * 24


def test_nearby_gaussians_keep_the_larger_value():
    semantic = torch.zeros(12, 24, dtype=torch.long)
    masks = torch.zeros(2, 12, 24, dtype=torch.bool)
    masks[0, 5:8, 4:7] = True  # centre (6, 5)
    masks[1, 5:8, 10:13] = True  # centre (6, 11)
    targets = panoptic_targets(semantic, make_instances(masks, [1, 1], [False, False]), THINGS, sigma=2.0)
    center = targets["center"][0]
    assert center[6, 8] == pytest.approx(math.exp(-9 / 8))  # 3 px from (6, 5), 3 px from (6, 11)
    assert center[6, 7] == pytest.approx(math.exp(-4 / 8))  # nearer the first: its value, not the sum
    assert center[6, 5] == center[6, 11] == 1.0


def test_centre_detection_is_threshold_nms_and_top_k():
    heatmap = torch.zeros(20, 20)
    heatmap[5, 5], heatmap[5, 7], heatmap[15, 15], heatmap[10, 2] = 0.9, 0.5, 0.7, 0.05
    coords, scores = find_instance_centers(heatmap, threshold=0.1, nms_kernel=7)
    assert coords.tolist() == [[5, 5], [15, 15]] and scores.tolist() == pytest.approx([0.9, 0.7])  # (5, 7) suppressed
    coords, _ = find_instance_centers(heatmap, threshold=0.1, nms_kernel=3)
    assert coords.tolist() == [[5, 5], [15, 15], [5, 7]]  # a smaller window keeps it
    assert find_instance_centers(heatmap, top_k=1)[0].tolist() == [[5, 5]]


def perfect_outputs(sample: dict, num_classes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network outputs that reproduce the ground truth: one-hot logits, the target heatmap and offsets."""
    semantic = sample["mask"].long()
    targets = panoptic_targets(semantic, sample["instances"], [1, 2, 3, 4])
    logits = torch.nn.functional.one_hot(torch.where(semantic == 255, 0, semantic), num_classes).permute(2, 0, 1) * 10.0
    return logits.float(), targets["center"], targets["offsets"]


def test_post_processing_of_perfect_outputs_recovers_every_instance():
    dataset = SyntheticShapes("val", lengths={"val": 24}, num_objects=(2, 5), return_instances=True)
    mask_ap = MaskAveragePrecision(SyntheticShapes.class_names, [1, 2, 3, 4])
    panoptic = PanopticMetrics([1, 2, 3, 4], num_classes=5)
    recovered = 0
    for index in range(len(dataset)):
        sample = dataset[index]
        prediction = panoptic_segmentation(*perfect_outputs(sample, 5), thing_ids=[1, 2, 3, 4])
        truth = sample["instances"]
        assert len(prediction["masks"]) == len(truth["masks"]), sample["name"]
        for mask, label in zip(truth["masks"].bool(), truth["labels"]):
            match = [k for k, predicted in enumerate(prediction["masks"]) if torch.equal(predicted, mask)]
            assert len(match) == 1 and prediction["labels"][match[0]] == label, sample["name"]
            recovered += 1
        mask_ap.update_instances([prediction], [truth])
        target = panoptic_target(sample["mask"], truth, [1, 2, 3, 4])
        panoptic.update_maps(prediction["panoptic"][None], target[None])
    assert recovered > 2 * len(dataset)
    assert mask_ap.scores()["mAP"] == pytest.approx(1.0)
    assert panoptic.scores()["PQ"] == pytest.approx(1.0) and panoptic.scores()["PQ_things"] == pytest.approx(1.0)


def test_panoptic_map_encodes_class_and_instance_and_thing_pixels_without_centre_are_void():
    semantic, instances = one_instance_image()
    logits = torch.nn.functional.one_hot(torch.where(semantic == 255, 0, semantic), 4).permute(2, 0, 1).float() * 10
    no_centre = torch.zeros(1, 16, 20)
    prediction = panoptic_segmentation(logits, no_centre, torch.zeros(2, 16, 20), thing_ids=THINGS)
    assert len(prediction["masks"]) == 0
    assert (prediction["panoptic"][2:6, 3:9] == 255_000).all()  # class 1 pixels, no centre: void
    assert (prediction["panoptic"][12:14, 10:14] == 3000).all() and prediction["panoptic"][0, 0] == 0
    targets = panoptic_targets(semantic, instances, THINGS)
    prediction = panoptic_segmentation(logits, targets["center"], targets["offsets"], thing_ids=THINGS)
    # The predicted class-2 pixels of the crowd region join the only centre: the majority class (1: 24 of 32
    # pixels) labels the instance, and its score is the centre's 1.0 x the mean class-1 probability, 24/32.
    assert (prediction["panoptic"][2:6, 3:9] == 1001).all() and (prediction["panoptic"][10:12, 0:4] == 1001).all()
    assert prediction["labels"].tolist() == [1] and prediction["scores"].item() == pytest.approx(0.75, abs=1e-3)
    small_stuff = panoptic_segmentation(logits, targets["center"], targets["offsets"], thing_ids=THINGS, stuff_area=9)
    assert (small_stuff["panoptic"][12:14, 10:14] == 255_000).all()  # 8 pixels of class 3 < stuff_area


def test_pq_of_things_and_stuff_by_hand_with_a_crowd_region():
    """Ground truth: stuff class 0, one car (class 1) of 20 pixels, a crowd region of class 1. Prediction: the car
    with 4 pixels missing and 1 extra (IoU 16/21), a false positive, and a segment inside the crowd region."""
    semantic = torch.zeros(10, 10, dtype=torch.long)
    masks = torch.zeros(2, 10, 10, dtype=torch.bool)
    masks[0, 0:4, 0:5] = True  # the car, 20 pixels
    masks[1, 6:10, 6:10] = True  # the crowd region
    semantic[masks[0]] = semantic[masks[1]] = 1
    target = panoptic_target(semantic, make_instances(masks, [1, 1], [False, True]), thing_ids=[1])
    assert target[0, 0] == 1001 and target[9, 9] == 1000 and target[5, 5] == 0  # the crowd: class 1, no instance

    prediction = torch.zeros(10, 10, dtype=torch.long)
    prediction[0:4, 0:5] = 1001
    prediction[3, 1:5] = 0  # 4 car pixels missed
    prediction[4, 0] = 1001  # 1 extra
    prediction[5, 0:3] = 1002  # a false positive car of 3 pixels
    prediction[7:10, 7:10] = 1003  # inside the crowd region of its class: neither false positive nor match
    metric = PanopticMetrics(thing_ids=[1], num_classes=2)
    metric.update_maps(prediction[None], target[None])
    scores = metric.scores()
    car_iou = 16 / 21
    assert scores["SQ_things"] == pytest.approx(car_iou) and scores["RQ_things"] == pytest.approx(1 / 1.5)
    assert scores["PQ_things"] == pytest.approx(car_iou / 1.5)
    # Stuff: 64 ground-truth pixels, 60 of them predicted stuff; 71 predicted stuff pixels, 7 of them on the crowd
    # region, which is not void: union 71 + 64 - 60 = 75.
    stuff_iou = 60 / 75
    assert scores["PQ_stuff"] == pytest.approx(stuff_iou, abs=1e-6)
    assert scores["PQ"] == pytest.approx((car_iou / 1.5 + stuff_iou) / 2)
