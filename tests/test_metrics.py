"""Confusion-matrix metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from seglab.metrics import SegmentationMetrics, scores_from_confusion_matrix


def test_scores_match_a_hand_computed_example():
    # 3 classes; class 2 appears only in the prediction, never in the ground truth.
    target = torch.tensor([[0, 0, 1, 1], [0, 255, 1, 255]])
    preds = torch.tensor([[0, 1, 1, 2], [0, 0, 1, 2]])
    metric = SegmentationMetrics(num_classes=3, ignore_index=255)
    metric.update(preds, target)
    # Valid pixels (target != 255): (0->0), (0->1), (1->1), (1->2), (0->0), (1->1)
    assert metric.confmat.tolist() == [[2, 1, 0], [0, 2, 1], [0, 0, 0]]
    scores = metric.compute()
    iou0, iou1, iou2 = 2 / 3, 2 / 4, 0 / 1
    assert scores["IoU"].tolist() == pytest.approx([iou0, iou1, iou2])
    assert scores["mIoU"].item() == pytest.approx((iou0 + iou1 + iou2) / 3)
    assert math.isnan(scores["Acc"][2].item())  # no ground-truth pixel of class 2
    assert scores["mAcc"].item() == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert scores["aAcc"].item() == pytest.approx(4 / 6)
    assert scores["fwIoU"].item() == pytest.approx(3 / 6 * iou0 + 3 / 6 * iou1)


def test_classes_absent_from_prediction_and_ground_truth_are_left_out_of_the_mean():
    confmat = torch.tensor([[5, 1, 0, 0], [2, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    scores = scores_from_confusion_matrix(confmat)
    assert torch.isnan(scores["IoU"][2:]).all()
    assert scores["mIoU"].item() == pytest.approx((5 / 8 + 4 / 7) / 2)


def test_matrix_is_summed_over_batches_not_averaged():
    metric = SegmentationMetrics(num_classes=2)
    metric.update(torch.tensor([[1, 1, 1, 1]]), torch.tensor([[1, 1, 1, 1]]))  # perfect, 4 pixels
    metric.update(torch.tensor([[0, 0]]), torch.tensor([[1, 0]]))  # 1 of 2 right
    # Whole-split IoU of class 1: 4 / 5; class 0: 1 / 2. A per-batch mean would give something else.
    assert metric.compute()["mIoU"].item() == pytest.approx((4 / 5 + 1 / 2) / 2)


def test_logits_are_reduced_by_argmax():
    logits = torch.zeros(1, 2, 1, 2)
    logits[0, 1, 0, 0] = 1.0
    metric = SegmentationMetrics(num_classes=2)
    metric.update(logits, torch.tensor([[[1, 0]]]))
    assert metric.compute()["mIoU"].item() == 1.0


def test_out_of_range_labels_are_refused():
    metric = SegmentationMetrics(num_classes=2, ignore_index=255)
    with pytest.raises(ValueError, match=r"\[7\]"):
        metric.update(torch.tensor([[0, 1]]), torch.tensor([[7, 255]]))


def test_scores_count_every_pixel_of_the_label_not_of_the_prediction(tmp_path):
    # Labels at twice the image's resolution: the logits are resized to the label, so the confusion matrix
    # counts the label's pixels (minus the ignored ones).
    from seglab.config.builders import build_datamodule, build_model

    from tests.helpers import make_cfg

    cfg = make_cfg(tmp_path, "model/backbone=resnet18")
    module = build_model(cfg, build_datamodule(cfg)).eval()
    target = torch.zeros(2, 64, 64, dtype=torch.long)
    target[:, :3] = 255
    with torch.no_grad():
        preds = module.validation_step({"image": torch.randn(2, 3, 32, 32), "mask": target}, 0)["masks"]["prediction"]
    assert preds.shape == (2, 64, 64)
    assert module.val_metrics.confmat.sum().item() == 2 * 61 * 64


def test_the_tests_recomputed_miou_agrees_with_the_metric_and_catches_a_wrong_score(monkeypatch):
    """The end-to-end tests compare the logged mIoU with tests/helpers/metrics.py's recomputation: it must equal
    SegmentationMetrics on maps with ignored pixels and a class in neither map, and fail on any other value."""
    from tests.helpers.metrics import assert_miou_is_recomputed, recomputed_miou
    from tests.helpers.probes import ValidationRecorder

    generator = torch.Generator().manual_seed(0)
    targets = [torch.randint(0, 4, (2, 6, 7), generator=generator) for _ in range(3)]  # class 4 never appears
    predictions = [torch.randint(0, 4, (2, 6, 7), generator=generator) for _ in range(3)]
    targets[0][0, :2] = 255
    monkeypatch.setattr(ValidationRecorder, "last", {"predictions": predictions, "targets": targets})
    metric = SegmentationMetrics(num_classes=5, ignore_index=255)
    for preds, target in zip(predictions, targets):
        metric.update(preds, target)
    logged = float(metric.compute()["mIoU"])
    assert recomputed_miou() == pytest.approx(logged, abs=1e-6)
    assert_miou_is_recomputed({"val/mIoU": logged})
    with pytest.raises(AssertionError):
        assert_miou_is_recomputed({"val/mIoU": logged + 0.01})
