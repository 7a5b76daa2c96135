"""Panoptic-DeepLab targets against hand-computed values, its post-processing on perfect outputs, and PQ."""

from __future__ import annotations

import math

import pytest
import torch

from seglab.data.datasets import SyntheticShapes
from seglab.data.instances import make_instances
from seglab.metrics.instance import MaskAveragePrecision
from seglab.metrics.panoptic import PanopticMetrics, panoptic_target
from seglab.models.panoptic_deeplab.postprocess import find_instance_centers, panoptic_segmentation
from seglab.models.panoptic_deeplab.targets import panoptic_targets

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
    # Mass centre (3.5, 5.5), rounded half to even: the Gaussian peaks at (4, 6).
    assert center[4, 6] == 1.0
    assert center[4, 7] == pytest.approx(math.exp(-1 / 8))  # d^2 = 1, 2 sigma^2 = 8
    assert center[2, 4] == pytest.approx(math.exp(-8 / 8))  # d^2 = 4 + 4
    assert center[4, 13] == pytest.approx(math.exp(-49 / 8))  # 3 sigma + 1 = 7 away: still inside the window
    assert center[11, 6] == pytest.approx(math.exp(-49 / 8))
    assert center[4, 14] == 0.0 and center[12, 6] == 0.0  # beyond 3 sigma + 1: cut off
    assert center.max() == 1.0 and (center == 1.0).sum() == 1  # the crowd region and stuff have no centre
    # Offsets point from each pixel to the centre pixel, (dy, dx), in whole pixels.
    assert offsets[:, 2, 3].tolist() == [2.0, 3.0]
    assert offsets[:, 5, 8].tolist() == [-1.0, -2.0]
    assert (offsets[:, ~instances["masks"][0].bool()] == 0).all()
    assert torch.equal(targets["offset_weights"][0], instances["masks"][0].float())  # thing, not crowd
    # No heatmap loss on void and crowd pixels; stuff pixels count (the heatmap is 0 there).
    center_weights = targets["center_weights"][0]
    assert center_weights[15, 19] == 0 and (center_weights[10:12, 0:4] == 0).all()
    assert center_weights[12, 10] == 1 and center_weights.sum() == 16 * 20 - 1 - 8
    # The 24-pixel instance is small (< 25): weight 3 in the semantic loss; everything else 1.
    weights = targets["semantic_weights"]
    assert (weights[2:6, 3:9] == 3).all() and weights.sum() == 16 * 20 + 2 * 24


def instance_of(pixels, shape=(12, 12), label=1, iscrowd=False):
    mask = torch.zeros(1, *shape, dtype=torch.bool)
    for y, x in pixels:
        mask[0, y, x] = True
    return make_instances(mask, [label], [iscrowd])


@pytest.mark.parametrize(
    ("pixels", "centre"),
    [
        ([(2, 3), (2, 4), (3, 3), (3, 4)], (2, 4)),  # mass centre (2.5, 3.5): half to even, 2.5 -> 2 and 3.5 -> 4
        ([(1, 4), (1, 5), (2, 4), (2, 5)], (2, 4)),  # (1.5, 4.5) -> (2, 4); floor(c + 0.5) would give (2, 5)
        ([(3, 0), (3, 1), (3, 2), (4, 0), (4, 1)], (3, 1)),  # (3.4, 0.8): just below .5 rounds down
        ([(3, 0), (4, 1), (4, 2), (4, 0), (3, 1)], (4, 1)),  # (3.6, 0.8): just above .5 rounds up
        ([(5, 7), (5, 8), (5, 9), (6, 7), (6, 8), (6, 9)], (6, 8)),  # (5.5, 8.0)
    ],
    ids=["2.5,3.5", "1.5,4.5", "3.4", "3.6", "5.5,8"],
)
def test_centres_round_half_to_even_as_deeplab2(pixels, centre):
    """DeepLab2 rounds the mass centre with tf.round (half to even); the offsets point at that pixel."""
    instances = instance_of(pixels)
    targets = panoptic_targets(torch.zeros(12, 12, dtype=torch.long), instances, THINGS, sigma=1.0)
    center, offsets = targets["center"][0], targets["offsets"]
    assert (center == 1.0).nonzero().tolist() == [list(centre)]
    cy, cx = centre
    assert center[cy, cx + 1] == pytest.approx(math.exp(-1 / 2)) and center[cy + 1, cx + 1] == pytest.approx(math.exp(-2 / 2))
    for y, x in pixels:
        assert offsets[:, y, x].tolist() == [cy - y, cx - x]
    assert torch.equal(targets["offset_weights"][0], instances["masks"][0].float())


@pytest.mark.parametrize("corner", ["top left", "bottom right"])
def test_one_pixel_instance_at_the_border_cuts_the_gaussian_there(corner):
    y, x = (0, 0) if corner == "top left" else (15, 19)
    targets = panoptic_targets(torch.zeros(16, 20, dtype=torch.long), instance_of([(y, x)], (16, 20)), THINGS, sigma=2.0, small_instance_area=2)
    center = targets["center"][0]
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(20.0), indexing="ij")
    inside = ((ys - y).abs() <= 7) & ((xs - x).abs() <= 7)  # the square of side 2 (3 sigma + 1) + 1, cut by the image
    expected = torch.where(inside, torch.exp(-((ys - y) ** 2 + (xs - x) ** 2) / 8), torch.zeros(()))
    assert torch.allclose(center, expected) and center[y, x] == 1.0 and int(inside.sum()) == 64
    assert (targets["offsets"] == 0).all()  # the pixel is its own centre
    assert targets["offset_weights"][0].sum() == 1 and targets["offset_weights"][0, y, x] == 1
    assert targets["semantic_weights"][y, x] == 3.0 and targets["semantic_weights"].sum() == 16 * 20 + 2


def test_gaussian_square_reaches_3_sigma_plus_1_for_any_sigma():
    semantic = torch.zeros(41, 41, dtype=torch.long)
    for sigma, radius in ((2.0, 7), (8 / 3, 9), (2.5, 8)):  # 3 sigma + 1 = 7, 9, 8.5
        center = panoptic_targets(semantic, instance_of([(20, 20)], (41, 41)), THINGS, sigma=sigma)["center"][0]
        assert center[20, 20] == 1.0
        assert center[20 + radius, 20 - radius] == pytest.approx(math.exp(-2 * radius**2 / (2 * sigma**2)))
        assert center[20, 20 + radius + 1] == 0.0 and center[20 - radius - 1, 20] == 0.0
        assert int((center > 0).sum()) == (2 * radius + 1) ** 2


def test_crowd_regions_are_skipped_and_the_rest_keeps_its_targets():
    """Crowd regions (and thing pixels outside every instance, DeepLab2's instance id 0) get no centre, no offsets
    and no heatmap or offset loss; a crowd region over an instance takes the shared pixels from it."""
    semantic = torch.zeros(12, 16, dtype=torch.long)
    masks = torch.zeros(2, 12, 16, dtype=torch.bool)
    masks[0, 2:6, 2:8] = True  # instance, rows 2-5, columns 2-7
    masks[1, 2:6, 6:12] = True  # crowd over its columns 6-7: the instance keeps columns 2-5, centre (3.5, 3.5)
    semantic[2:6, 2:12] = 1
    semantic[10, 14] = 2  # a thing pixel in no instance: treated as crowd
    targets = panoptic_targets(semantic, make_instances(masks, [1, 1], [False, True]), THINGS, sigma=1.0, small_instance_area=20)
    center = targets["center"][0]
    assert (center == 1.0).nonzero().tolist() == [[4, 4]]  # (3.5, 3.5) rounds half to even to (4, 4)
    crowd = masks[1] | (semantic == 2)
    assert (targets["center_weights"][0][crowd] == 0).all() and targets["center_weights"][0].sum() == 12 * 16 - 25
    assert torch.equal(targets["offset_weights"][0].bool(), masks[0] & ~masks[1])
    assert (targets["offsets"][:, crowd] == 0).all() and targets["offsets"][:, 2, 5].tolist() == [2.0, -1.0]
    weights = targets["semantic_weights"]  # the instance's 16 remaining pixels are small, the crowd region is not
    assert (weights[2:6, 2:6] == 3.0).all() and weights.sum() == 12 * 16 + 2 * 16
    only_crowd = panoptic_targets(semantic, make_instances(masks[1:], [1], [True]), THINGS, sigma=1.0)
    assert (only_crowd["center"] == 0).all() and (only_crowd["offset_weights"] == 0).all()


def test_overlapping_instances_the_later_owns_the_shared_pixels():
    """COCO instances may overlap: as in the semantic mask, the later one takes the shared pixels, and each centre
    is the mean of the pixels an instance keeps."""
    semantic = torch.zeros(12, 12, dtype=torch.long)
    masks = torch.zeros(3, 12, 12, dtype=torch.bool)
    masks[0, 1:5, 1:9] = True  # rows 1-4, columns 1-8: keeps columns 1-4, centre (2.5, 2.5) -> (2, 2)
    masks[1, 1:5, 5:9] = True  # keeps 12 pixels around the third: centre (2.5, 6.17) -> (2, 6)
    masks[2, 2:4, 7:9] = True  # rows 2-3, columns 7-8: centre (2.5, 7.5) -> (2, 8)
    targets = panoptic_targets(semantic, make_instances(masks, [1, 1, 2], [False] * 3), THINGS, sigma=1.0)
    assert (targets["center"][0] == 1.0).nonzero().tolist() == [[2, 2], [2, 6], [2, 8]]
    offsets = targets["offsets"]
    assert offsets[:, 1, 4].tolist() == [1.0, -2.0] and offsets[:, 1, 5].tolist() == [1.0, 1.0]
    assert offsets[:, 3, 8].tolist() == [-1.0, 0.0]
    hidden = make_instances(masks[[2, 1]], [2, 1], [False, False])  # the small one annotated first: hidden
    assert (panoptic_targets(semantic, hidden, THINGS, sigma=1.0)["center"][0] == 1.0).nonzero().tolist() == [[2, 6]]


def test_an_image_without_instances_has_an_empty_heatmap():
    semantic = torch.zeros(8, 10, dtype=torch.long)
    semantic[0, :3] = 255
    empty = make_instances(torch.zeros(0, 8, 10, dtype=torch.bool), [], [])
    targets = panoptic_targets(semantic, empty, THINGS)
    assert (targets["center"] == 0).all() and (targets["offsets"] == 0).all() and (targets["offset_weights"] == 0).all()
    assert targets["center_weights"].sum() == 80 - 3 and (targets["semantic_weights"] == 1).all()
    assert {key: tuple(value.shape) for key, value in targets.items()} == {
        "center": (1, 8, 10), "center_weights": (1, 8, 10), "offsets": (2, 8, 10), "offset_weights": (1, 8, 10),
        "semantic_weights": (8, 10),
    }  # fmt: skip


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
