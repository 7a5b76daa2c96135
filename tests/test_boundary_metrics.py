"""Boundary metrics (trimap mIoU, Boundary IoU) against hand-computed values and the official conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from seglab.metrics.boundary import BoundaryIoU, TrimapMIoU, boundary_dilation, near_label_change
from seglab.runtime.errors import UserError


def two_halves(height: int = 6, width: int = 8, split: int = 4) -> torch.Tensor:
    """``(1, H, W)``: class 0 left of column ``split``, class 1 from it on."""
    labels = torch.zeros(1, height, width, dtype=torch.long)
    labels[..., split:] = 1
    return labels


def square(size: int = 8, top: int = 2, side: int = 4) -> torch.Tensor:
    """``(1, size, size)``: a ``side`` x ``side`` square of class 1 at (``top``, ``top``) on class 0."""
    labels = torch.zeros(1, size, size, dtype=torch.long)
    labels[0, top : top + side, top : top + side] = 1
    return labels


def trimap(preds: torch.Tensor, target: torch.Tensor, widths=(1, 2, 10), num_classes: int = 2) -> dict[int, float]:
    metric = TrimapMIoU(num_classes, widths=widths)
    metric.update(preds, target)
    return {int(name.split("/")[1]): value.item() for name, value in metric.compute().items()}


def boundary_iou(preds: torch.Tensor, target: torch.Tensor, num_classes: int = 2, **options) -> BoundaryIoU:
    metric = BoundaryIoU(num_classes, **options)
    metric.update(preds, target)
    return metric


def brute_force_near_label_change(labels: np.ndarray, radius: int, border_is_change: bool) -> np.ndarray:
    height, width = labels.shape
    out = np.zeros(labels.shape, dtype=bool)
    for y in range(height):
        for x in range(width):
            window = labels[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
            leaves = y < radius or x < radius or y + radius >= height or x + radius >= width
            out[y, x] = bool((window != labels[y, x]).any()) or (border_is_change and leaves)
    return out


def official_mask_boundary(mask: np.ndarray, dilation: int) -> np.ndarray:
    """boundary-iou-api's mask_to_boundary: the mask minus its erosion (3x3, ``dilation`` times), the image
    padded with background."""
    eroded = ndimage.binary_erosion(mask, structure=np.ones((3, 3)), iterations=dilation, border_value=0)
    return mask & ~eroded


@pytest.mark.parametrize("border_is_change", [False, True])
def test_near_label_change_is_the_square_window_test(border_is_change):
    rng = np.random.default_rng(0)
    for _ in range(6):
        height, width = rng.integers(1, 12, size=2)
        labels = rng.integers(0, 3, size=(height, width))
        labels[rng.random((height, width)) < 0.2] = 255
        for radius in (1, 2, 3, 5, 7, 12):  # the sliding max over spans of 1, 2, 4, 8: odd and wider than the image
            got = near_label_change(torch.from_numpy(labels)[None], radius, border_is_change)[0].numpy()
            assert np.array_equal(got, brute_force_near_label_change(labels, radius, border_is_change))


# ---- trimap mIoU -------------------------------------------------------------------------------------------


def test_trimap_of_two_touching_classes():
    # Class 0 in columns 0-3, class 1 in 4-7; the prediction moves the edge one column left.
    target, preds = two_halves(), two_halves(split=3)
    scores = trimap(preds, target, widths=(1, 2, 10, 40))
    # Width 1 = columns 3 and 4: class 0 has 6 pixels there, all predicted 1; class 1 has 6, all right.
    assert scores[1] == pytest.approx((0 / 6 + 6 / 12) / 2)
    # Width 2 = columns 2-5: class 0: 6 right of 12, class 1: 12 right, 18 predicted.
    assert scores[2] == pytest.approx((6 / 12 + 12 / 18) / 2)
    # Width 10 and 40 reach every pixel: the image's mIoU.
    assert scores[10] == scores[40] == pytest.approx((18 / 24 + 24 / 30) / 2)


def test_trimap_band_of_a_straight_edge_is_two_w_pixels_wide_and_ignores_the_image_border():
    metric = TrimapMIoU(2, widths=(1, 3))
    metric.update(two_halves(), two_halves())
    assert metric.confmat.sum(dim=(1, 2)).tolist() == [2 * 6, 6 * 6]  # columns 3-4, then 1-6 (not 0 and 7)


def test_trimap_of_one_square():
    target = square()
    assert trimap(target, target) == {1: 1.0, 2: 1.0, 10: 1.0}
    # All background predicted. Width 1: the square's 12 outer pixels and the 20 background pixels around it.
    scores = trimap(torch.zeros_like(target), target)
    assert scores[1] == pytest.approx((20 / 32 + 0) / 2)
    # Width 2: every pixel (the square's inner 2x2 is 2 pixels from the background).
    assert scores[2] == pytest.approx((48 / 64 + 0) / 2)


def test_trimap_of_a_one_pixel_object_and_an_object_in_a_corner():
    target = torch.zeros(1, 7, 7, dtype=torch.long)
    target[0, 3, 3] = 1
    # Width 1 = the 3x3 block around the pixel; all background predicted.
    assert trimap(torch.zeros_like(target), target, widths=(1,)) == {1: pytest.approx((8 / 9 + 0) / 2)}
    # A 2x2 object in the top-left corner: the image border is no label change, so its corner pixel is not in
    # the band: 3 of its pixels and 5 background pixels are.
    corner = torch.zeros(1, 6, 6, dtype=torch.long)
    corner[0, :2, :2] = 1
    metric = TrimapMIoU(2, widths=(1,))
    metric.update(corner, corner)
    assert metric.confmat[0].tolist() == [[5, 0], [0, 3]]


def test_trimap_counts_edges_of_ignored_regions_but_never_ignored_pixels():
    # Class 0 in columns 0-2, an ignored column 3, class 1 in 4-7; all class 0 predicted.
    target = two_halves(height=4, split=4)
    target[..., 3] = 255
    metric = TrimapMIoU(2, widths=(1,))
    metric.update(torch.zeros_like(target), target)
    # Width 1: columns 2 and 4 (beside the ignored column); column 3 itself is not scored.
    assert metric.confmat[0].tolist() == [[4, 0], [4, 0]]
    assert metric.compute()["trimap_mIoU/1"].item() == pytest.approx((4 / 8 + 0) / 2)


def test_an_image_without_label_changes_adds_nothing_to_the_trimap():
    uniform = torch.ones(1, 6, 8, dtype=torch.long)
    metric = TrimapMIoU(2, widths=(1, 2))
    metric.update(uniform, uniform)
    assert metric.confmat.sum() == 0
    assert all(math.isnan(value) for value in metric.compute().values())
    metric.update(two_halves(split=3), two_halves())
    assert {int(k.split("/")[1]): v.item() for k, v in metric.compute().items()} == pytest.approx(
        trimap(two_halves(split=3), two_halves(), widths=(1, 2))
    )


def test_trimap_leaves_out_classes_absent_from_ground_truth_and_prediction():
    target, preds = two_halves(), two_halves(split=3)
    assert trimap(preds, target, num_classes=5) == pytest.approx(trimap(preds, target, num_classes=2))


def test_defaults_are_the_papers_band_widths_and_dilation_ratio():
    assert TrimapMIoU(2).widths == [1, 2, 5, 10, 20, 40]
    assert BoundaryIoU(2).dilation_ratio == 0.02


def test_trimap_widths_are_sorted_without_duplicates_and_named_by_width():
    metric = TrimapMIoU(2, widths=[10, 1, 10, 5])
    assert metric.widths == [1, 5, 10]
    metric.update(two_halves(), two_halves())
    assert list(metric.compute()) == ["trimap_mIoU/1", "trimap_mIoU/5", "trimap_mIoU/10"]


@pytest.mark.parametrize("widths", [[0], [-1], [2.5], [True], [], "5", 5, [1, 0]])
def test_bad_trimap_widths_are_one_clear_error(widths):
    with pytest.raises(UserError, match="trimap widths"):
        TrimapMIoU(2, widths=widths)


# ---- Boundary IoU ------------------------------------------------------------------------------------------


def test_boundary_dilation_is_two_percent_of_the_diagonal_rounded_half_to_even_and_at_least_one():
    assert boundary_dilation(10, 10) == 1  # 0.28 px
    assert boundary_dilation(100, 100) == 3  # 2.83 px
    assert boundary_dilation(512, 1024) == 23  # 22.9 px
    assert boundary_dilation(1024, 2048) == 46  # 45.8 px
    assert boundary_dilation(3, 4, 0.5) == 2  # 2.5 -> 2, as Python's (and the official code's) round
    assert boundary_dilation(3, 4, 0.7) == 4  # 3.5 -> 4


def test_boundary_iou_of_one_square():
    target = square(size=10, top=3)  # d = 1
    perfect = boundary_iou(target, target).compute()
    assert perfect["boundary_mIoU"].item() == 1.0
    assert perfect["boundary_IoU/0"].item() == perfect["boundary_IoU/1"].item() == 1.0
    # All background predicted. G_d(1): the square's 12 outer pixels; G_d(0): the 36 pixels along the image
    # border and the 20 around the square; P_d(0): the 36 along the border.
    metric = boundary_iou(torch.zeros_like(target), target)
    assert metric.intersection.tolist() == [36, 0]
    assert metric.union.tolist() == [56, 12]
    assert metric.compute()["boundary_mIoU"].item() == pytest.approx((36 / 56 + 0) / 2)


def test_boundary_iou_of_two_touching_classes():
    # Class 0 in columns 0-3, class 1 in 4-7 (d = 1); the prediction moves the edge one column left.
    # G_d(0): column 0 and 3, rows 0 and 5 of columns 1-2 (16); P_d(0): columns 0 and 2, rows 0 and 5 of column 1
    # (14); both and predicted 0: column 0, four border pixels (10). Class 1: G_d 16, P_d 18, both 12.
    metric = boundary_iou(two_halves(split=3), two_halves())
    assert metric.intersection.tolist() == [10, 12]
    assert metric.union.tolist() == [16 + 14 - 10, 16 + 18 - 12]
    assert metric.compute()["boundary_mIoU"].item() == pytest.approx((10 / 20 + 12 / 22) / 2)


def test_boundary_iou_leaves_out_prediction_boundaries_on_ignored_pixels():
    # Class 0 in columns 0-2, an ignored column 3, class 1 in 4-7; the prediction paints column 3 with class 0.
    target = two_halves(split=4)
    target[..., 3] = 255
    metric = boundary_iou(two_halves(split=4), target)
    # G_d(0) includes column 2, beside the ignored column (14 pixels); P_d(0)'s column 3 lies on ignored pixels
    # and is left out (10 remain). Class 1's boundaries agree (16).
    assert metric.intersection.tolist() == [10, 16]
    assert metric.union.tolist() == [14, 16]
    assert metric.compute()["boundary_mIoU"].item() == pytest.approx((10 / 14 + 1) / 2)


def test_boundary_iou_of_an_image_without_label_changes_is_its_border_band():
    uniform = torch.zeros(1, 6, 6, dtype=torch.long)
    metric = boundary_iou(uniform, uniform)
    assert metric.union.tolist() == [20, 0]  # the 36 - 16 pixels along the border; class 1 absent
    scores = metric.compute()
    assert scores["boundary_mIoU"].item() == 1.0 and math.isnan(scores["boundary_IoU/1"].item())


def test_boundary_iou_of_a_one_pixel_object():
    target, preds = torch.zeros(1, 10, 10, dtype=torch.long), torch.zeros(1, 10, 10, dtype=torch.long)
    target[0, 4, 4] = preds[0, 4, 5] = 1
    metric = boundary_iou(preds, target)
    # Class 1: the two single pixels. Class 0: border (36) + the 8 pixels around each object; both and
    # predicted 0: the border and the 4 pixels the two neighbourhoods share.
    assert metric.intersection.tolist() == [40, 0]
    assert metric.union.tolist() == [48, 2]
    assert metric.compute()["boundary_mIoU"].item() == pytest.approx((40 / 48 + 0) / 2)


def test_boundary_iou_counts_the_image_border_as_a_boundary():
    target = torch.zeros(1, 10, 10, dtype=torch.long)
    target[0, :, :3] = 1
    metric = boundary_iou(torch.zeros_like(target), target)
    # Class 1 touches the border: columns 0 and 2 and the two border pixels of column 1.
    assert metric.union[1].item() == 22
    # With d = 3 (20 x 20 image, ratio 0.1), a 10 x 10 square's band is all but its inner 4 x 4.
    big = square(size=20, top=5, side=10)
    assert boundary_iou(big, big, dilation_ratio=0.1).union.tolist() == [300, 100 - 16]


def test_boundary_iou_follows_the_official_mask_boundary_on_random_maps():
    rng = np.random.default_rng(1)
    classes, metric = 4, BoundaryIoU(4, dilation_ratio=0.05)
    intersection, union = np.zeros(classes), np.zeros(classes)
    for height, width in ((17, 23), (30, 12), (9, 9)):
        target = rng.integers(0, classes, size=(2, height, width))
        target[rng.random(target.shape) < 0.1] = 255
        preds = rng.integers(0, classes, size=target.shape)
        metric.update(torch.from_numpy(preds), torch.from_numpy(target))
        dilation = boundary_dilation(height, width, 0.05)
        for t, p in zip(target, preds):
            for c in range(classes):
                gt = official_mask_boundary(t == c, dilation)
                pred = official_mask_boundary(p == c, dilation) & (t != 255)
                intersection[c] += (gt & pred).sum()
                union[c] += (gt | pred).sum()
    assert metric.intersection.tolist() == intersection.tolist()
    assert metric.union.tolist() == union.tolist()


@pytest.mark.parametrize("ratio", [0, 1, -0.02, True, "0.02", float("nan")])
def test_bad_dilation_ratio_is_one_clear_error(ratio):
    with pytest.raises(UserError, match="dilation_ratio"):
        BoundaryIoU(2, dilation_ratio=ratio)


# ---- both ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric_class", [TrimapMIoU, BoundaryIoU])
def test_counts_are_summed_over_batches_and_processes(metric_class):
    batches = [(two_halves(split=3), two_halves()), (torch.zeros_like(square()), square())]
    one_pass = metric_class(2)
    for preds, target in batches:
        one_pass.update(preds, target)
    first, second = metric_class(2), metric_class(2)  # as two DDP ranks
    first.update(*batches[0])
    second.update(*batches[1])
    first.merge_state(second)  # the reduction DDP applies (dist_reduce_fx="sum")
    for name, value in one_pass.compute().items():
        assert first.compute()[name].item() == pytest.approx(value.item(), nan_ok=True)


@pytest.mark.parametrize("metric_class", [TrimapMIoU, BoundaryIoU])
def test_an_empty_batch_adds_nothing_and_a_one_row_image_is_all_boundary(metric_class):
    metric = metric_class(3)
    metric.update(torch.zeros(0, 5, 5, dtype=torch.long), torch.zeros(0, 5, 5, dtype=torch.long))
    assert all(math.isnan(value.item()) for value in metric.compute().values())
    # In a 1 x 4 image every pixel is within 1 pixel of a label change (and, for Boundary IoU, of the border):
    # both metrics are the image's mIoU, (1 + 1/2 + 1/2) / 3.
    metric.update(torch.tensor([[[0, 1, 2, 2]]]), torch.tensor([[[0, 1, 1, 2]]]))
    assert all(value.item() == pytest.approx(2 / 3) for name, value in metric.compute().items() if "mIoU" in name)


@pytest.mark.parametrize("metric_class", [TrimapMIoU, BoundaryIoU])
def test_logits_are_reduced_by_argmax_and_bad_labels_refused(metric_class):
    target, preds = two_halves(), two_halves(split=3)
    logits = torch.nn.functional.one_hot(preds, 2).permute(0, 3, 1, 2).float()
    from_logits, from_labels = metric_class(2), metric_class(2)
    from_logits.update(logits, target)
    from_labels.update(preds, target)
    assert {k: v.item() for k, v in from_logits.compute().items()} == {
        k: v.item() for k, v in from_labels.compute().items()
    }
    with pytest.raises(ValueError, match=r"\[7\]"):
        metric_class(2).update(preds, torch.full_like(target, 7))
    with pytest.raises(ValueError, match="class indices"):
        metric_class(2).update(torch.full_like(preds, 2), target)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("metric_class", [TrimapMIoU, BoundaryIoU])
def test_boundary_metrics_give_the_same_result_on_the_gpu(metric_class):
    target, preds = square(size=40, top=7, side=20), square(size=40, top=8, side=20)
    on_cpu, on_gpu = metric_class(2), metric_class(2).cuda()
    on_cpu.update(preds, target)
    on_gpu.update(preds.cuda(), target.cuda())
    for name, value in on_cpu.compute().items():
        assert on_gpu.compute()[name].item() == pytest.approx(value.item(), nan_ok=True)
