"""PQ, SQ and RQ equal panopticapi's ``pq_compute`` on random panoptic maps with void, crowd and absent classes."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from panopticapi.evaluation import pq_compute
from PIL import Image

from seglab.data.instances import make_instances
from seglab.metrics.panoptic import PanopticMetrics, panoptic_target

DIVISOR = 1000
VOID = 255 * DIVISOR
STUFF, THINGS = [0, 1, 2], [3, 4, 5]  # classes 2 and 5 never occur
NAMES = ["road", "sky", "water", "car", "person", "boat"]


def random_pair(rng: np.random.Generator, height: int = 24, width: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A ground-truth panoptic map (two stuff classes, things, a crowd region, void) and a prediction made from
    it by moving, dropping, relabelling and splitting segments, with void where the model abstains."""
    target = np.where(np.arange(height)[:, None] < height // 2, 0, 1) * DIVISOR + np.zeros((1, width), np.int64)
    for instance_id in range(1, int(rng.integers(2, 6))):
        y, x, h, w = rng.integers(0, height - 3), rng.integers(0, width - 3), rng.integers(2, 9), rng.integers(2, 11)
        target[y : y + h, x : x + w] = int(rng.choice([3, 4])) * DIVISOR + instance_id
    if rng.random() < 0.7:  # a crowd region of class 3 or 4: a thing segment without instance id
        y, x = rng.integers(0, height - 6), rng.integers(0, width - 8)
        target[y : y + 6, x : x + 8] = int(rng.choice([3, 4])) * DIVISOR
    y, x = rng.integers(0, height - 4), rng.integers(0, width - 4)
    target[y : y + int(rng.integers(1, 5)), x : x + int(rng.integers(1, 5))] = VOID

    prediction = np.roll(target, (int(rng.integers(-1, 2)), int(rng.integers(-1, 2))), axis=(0, 1))
    for value in np.unique(prediction):
        segment = prediction == value
        draw = rng.random()
        if value == VOID:
            continue
        if draw < 0.15:
            prediction[segment] = VOID  # abstains (Panoptic-DeepLab: thing pixels without centre, small stuff)
        elif draw < 0.3 and value // DIVISOR in THINGS:
            prediction[segment] = (7 - value // DIVISOR) * DIVISOR + value % DIVISOR + 50  # the other thing class
        elif draw < 0.45:
            rows = np.nonzero(segment.any(axis=1))[0]
            split = segment & (np.arange(height)[:, None] >= rows[len(rows) // 2])
            prediction[split] = (value // DIVISOR) * DIVISOR + 90 + value % DIVISOR  # split in two: one may still match
    y, x = rng.integers(0, height - 3), rng.integers(0, width - 3)
    prediction[y : y + 3, x : x + 3] = int(rng.choice([3, 4])) * DIVISOR + 77  # a small extra segment
    if rng.random() < 0.5:
        prediction[rng.random((height, width)) < 0.03] = VOID  # scattered void pixels
    return target, prediction


def id_to_rgb(ids: np.ndarray) -> np.ndarray:
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def write_coco_panoptic(maps: list[np.ndarray], folder: Path, ground_truth: bool) -> Path:
    """COCO panoptic format: one PNG of RGB-encoded segment ids per image (0 = void) and a json whose
    ``segments_info`` give each segment's category (class + 1), ``iscrowd`` and, for the ground truth, ``area``."""
    folder.mkdir(parents=True)
    annotations = []
    for image_id, panoptic in enumerate(maps):
        values = [v for v in np.unique(panoptic).tolist() if v != VOID]
        segment_ids = np.zeros(panoptic.shape, np.int64)
        segments = []
        for segment_id, value in enumerate(values, start=1):
            segment_ids[panoptic == value] = segment_id * 4099  # ids spread over all three channels
            info = {"id": segment_id * 4099, "category_id": value // DIVISOR + 1}
            if ground_truth:
                info.update(iscrowd=int(value // DIVISOR in THINGS and value % DIVISOR == 0), area=int((panoptic == value).sum()))
            segments.append(info)
        file_name = f"{image_id:04d}.png"
        Image.fromarray(id_to_rgb(segment_ids)).save(folder / file_name)
        annotations.append({"image_id": image_id, "file_name": file_name, "segments_info": segments})
    categories = [{"id": c + 1, "name": NAMES[c], "isthing": int(c in THINGS)} for c in range(len(NAMES))]
    content = {"annotations": annotations, "categories": categories, "images": [{"id": i} for i in range(len(maps))]}
    (folder.parent / f"{folder.name}.json").write_text(json.dumps(content))
    return folder.parent / f"{folder.name}.json"


def official_pq(targets: list[np.ndarray], predictions: list[np.ndarray], work: Path) -> dict:
    gt_json = write_coco_panoptic(targets, work / "gt", ground_truth=True)
    pred_json = write_coco_panoptic(predictions, work / "pred", ground_truth=False)
    with contextlib.redirect_stdout(io.StringIO()):
        return pq_compute(str(gt_json), str(pred_json), str(work / "gt"), str(work / "pred"))


def test_pq_sq_rq_equal_panopticapi_with_void_crowd_and_absent_classes(tmp_path):
    rng = np.random.default_rng(0)
    pairs = [random_pair(rng) for _ in range(12)]
    targets, predictions = [t for t, _ in pairs], [p for _, p in pairs]
    predictions[3][:] = VOID  # a model that abstains on a whole image
    assert any((p == VOID).any() and (t != VOID).any() for t, p in pairs)  # prediction void on labelled pixels
    assert sum(bool(((t // DIVISOR >= 3) & (t % DIVISOR == 0)).any()) for t in targets) >= 4  # crowd regions

    metric = PanopticMetrics(THINGS, num_classes=6, class_names=NAMES)
    for start in range(0, len(pairs), 5):  # batches of 5, 5 and 2 images
        batch = slice(start, start + 5)
        metric.update_maps(torch.from_numpy(np.stack(predictions[batch])), torch.from_numpy(np.stack(targets[batch])))
    ours = metric.scores()
    theirs = official_pq(targets, predictions, tmp_path)

    assert 0.2 < ours["PQ"] < 0.8
    for name, group in (("", "All"), ("_things", "Things"), ("_stuff", "Stuff")):
        for score in ("PQ", "SQ", "RQ"):
            assert ours[f"{score}{name}"] == pytest.approx(theirs[group][score.lower()], abs=1e-6), f"{score}{name}"
    for c, class_name in enumerate(NAMES):
        for score in ("PQ", "SQ", "RQ"):
            official = theirs["per_class"][c + 1][score.lower()]
            if class_name in ("water", "boat"):  # in neither map: panopticapi lists 0 and averages without it
                assert math.isnan(ours[f"{score}_class/{class_name}"]) and official == 0.0
            else:
                assert ours[f"{score}_class/{class_name}"] == pytest.approx(official, abs=1e-6), f"{score} {class_name}"


def test_prediction_void_costs_and_crowd_excuses_only_its_own_class():
    """Ground truth: a 4x5 car (class 3), a 4x4 crowd region of class 3, a 3x3 void square, stuff elsewhere."""
    target = np.zeros((10, 10), np.int64)
    target[0:4, 0:5] = 3001
    target[6:10, 6:10] = 3000  # crowd
    target[6:9, 0:3] = VOID

    def scores(prediction: np.ndarray) -> dict[str, float]:
        metric = PanopticMetrics(THINGS, num_classes=6)
        metric.update_maps(torch.from_numpy(prediction[None]), torch.from_numpy(target[None]))
        return metric.scores()

    # The car with 11 of its 20 pixels left void: IoU 9/20 < 0.5 (void pixels of the prediction stay in the
    # union), so a false negative and a false positive, not a match of 9/9.
    abstains = target.copy()
    abstains[0:4, 0:5] = 0
    abstains[0:3, 0:3] = 3001
    abstains[0:4, 3:5] = abstains[3, 0:3] = VOID
    assert scores(abstains)["RQ_things"] == 0.0 and scores(abstains)["PQ_things"] == 0.0
    # A predicted person (class 4) on the crowd region of class 3 is a false positive; a predicted car there is
    # excused; a segment more than half on void is excused whatever its class.
    on_crowd = target.copy()
    on_crowd[7:10, 7:10] = 4005
    assert scores(on_crowd)["RQ_class/4"] == 0.0 and scores(on_crowd)["RQ_class/3"] == 1.0
    on_crowd[7:10, 7:10] = 3005
    assert math.isnan(scores(on_crowd)["RQ_class/4"]) and scores(on_crowd)["RQ_class/3"] == 1.0
    on_void = target.copy()
    on_void[6:9, 0:3] = 4005
    on_void[9, 0:2] = 4005  # 9 of 11 pixels on void
    assert math.isnan(scores(on_void)["PQ_class/4"])
    # The stuff segment's union leaves out its pixels on ground-truth void: a perfect prediction except that
    # the void square is predicted stuff still scores SQ 1.
    assert scores(np.where(target == VOID, 0, target))["SQ_stuff"] == 1.0


def test_no_segment_anywhere_gives_nan_and_a_class_outside_the_range_is_refused():
    metric = PanopticMetrics(THINGS, num_classes=6)
    metric.update_maps(torch.full((1, 4, 4), VOID), torch.full((1, 4, 4), VOID))
    assert all(math.isnan(value) for value in metric.scores().values())
    with pytest.raises(ValueError, match=r"classes \[7\]"):
        metric.update_maps(torch.full((1, 4, 4), 7001), torch.zeros(1, 4, 4, dtype=torch.long))


def test_ground_truth_maps_keep_crowd_regions_as_crowd_segments_of_their_class():
    semantic = torch.zeros(8, 8, dtype=torch.long)
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[0, 0:2, 0:2] = masks[1, 4:6, 4:6] = masks[2, 6:8, 0:2] = True
    semantic[masks[0]], semantic[masks[1]], semantic[masks[2]] = 3, 3, 4
    semantic[0, 7] = 3  # a thing pixel outside every instance
    semantic[7, 7] = 255
    target = panoptic_target(semantic, make_instances(masks, [3, 3, 4], [False, True, True]), THINGS)
    assert (target[0:2, 0:2] == 3001).all() and (target[4:6, 4:6] == 3000).all() and (target[6:8, 0:2] == 4000).all()
    assert target[0, 7] == VOID and target[7, 7] == VOID and target[3, 3] == 0
