"""Boundary metrics for semantic segmentation: trimap mIoU (DeepLab v1/v2) and Boundary IoU (Cheng et al., 2021).

Both count pixels over the whole split (never an average of per-image scores) and are summed across processes
under DDP, like :class:`seglab.metrics.SegmentationMetrics`. Both find boundaries with sliding maxima on the device.

**Near a label change.** A pixel ``p`` is *within r pixels of a label change* when some pixel ``q`` with
``max(|p_x - q_x|, |p_y - q_y|) <= r`` (a ``(2r + 1) x (2r + 1)`` square around ``p``) has a different label.
The ignore label counts as a label of its own (its edges are label changes); :func:`near_label_change` says
whether pixels outside the image count as a different label.

**Trimap mIoU** (DeepLab v1, Fig. 5; v3+, Fig. 5(a)): the mIoU over the valid pixels within ``w`` pixels of a
ground-truth label change, for each band width ``w``; the image border is not a label change. Width 1 is the
pixels with a differently labelled 8-neighbour: a straight edge between two regions gives a band two pixels wide,
width ``w`` one ``2w`` wide. The papers measured the band around PASCAL VOC's *void* outlines (VOC draws a void
band around every object); under the definition above those outlines are label changes, so on VOC, where they
separate the classes, the bands are the papers' (up to the shape of the neighbourhood, a square here). Classes with no pixel in the band in either the ground truth or the prediction are left out of a
width's mean. An image without label changes adds nothing.

**Boundary IoU** (Cheng, Girshick, Dollár, Berg, Kirillov, CVPR 2021; official code: boundary-iou-api): for each
class ``c``, ``G_d`` are the pixels of the ground-truth mask ``target == c`` within ``d`` pixels of a pixel
outside it or of the image border (the mask minus its erosion by a ``(2d + 1)`` square, the image padded with
background, as the official ``mask_to_boundary``), ``P_d`` likewise for ``prediction == c``, and
``IoU_c = |G_d & P_d| / |G_d | P_d|``. ``d = max(1, round(dilation_ratio * image diagonal))``, the paper's
``dilation_ratio`` being 0.02. Where seglab differs from the official code, which scores instance and panoptic
segments: it scores one mask per class of a semantic map; it sums intersections and unions over the split
before dividing (like mIoU) instead of scoring each image; pixels whose ground truth is the ignore label are
left out of both counts (as the official panoptic code leaves out prediction boundary pixels on VOID), while a
ground-truth mask's boundary includes its edge with an ignored region (the official code's mask-versus-rest
boundary). Classes absent from both counts have no IoU (NaN) and are left out of ``boundary_mIoU``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torchmetrics import Metric

from seglab.metrics.confusion import scores_from_confusion_matrix
from seglab.runtime.errors import UserError

# Band widths (pixels) of the trimap curve: the DeepLab papers plot 0 to 40 px.
DEFAULT_TRIMAP_WIDTHS = (1, 2, 5, 10, 20, 40)
# Boundary IoU's dilation as a fraction of the image diagonal (the paper's value).
DEFAULT_DILATION_RATIO = 0.02


def near_label_change(labels: torch.Tensor, radius: int, border_is_change: bool = False) -> torch.Tensor:
    """Boolean ``(N, H, W)``: pixels of ``labels`` ``(N, H, W)`` within ``radius`` pixels of a label change.

    With ``border_is_change`` pixels outside the image count as a different label (Boundary IoU's convention),
    without they are not there (the trimap's).
    """
    return _grow(_label_changes(labels, border_is_change), radius - 1)[:, 0] > 0


def boundary_dilation(height: int, width: int, dilation_ratio: float = DEFAULT_DILATION_RATIO) -> int:
    """Boundary IoU's band width in pixels: ``max(1, round(dilation_ratio * sqrt(height^2 + width^2)))``
    (Python's rounding, half to even, as the official code's)."""
    return max(1, round(dilation_ratio * math.sqrt(height * height + width * width)))


class TrimapMIoU(Metric):
    """mIoU in bands of several ``widths`` (pixels) around the ground truth's label changes (module docstring).

    :meth:`compute` returns ``{"trimap_mIoU/<w>": mIoU}`` for each width, smallest first.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(
        self, num_classes: int, widths: Sequence[int] = DEFAULT_TRIMAP_WIDTHS, ignore_index: int = 255
    ) -> None:
        super().__init__()
        if isinstance(widths, (int, str)) or not widths:
            raise UserError(f"trimap widths must be a non-empty list of band widths in pixels, got {widths!r}")
        for w in widths:
            if not isinstance(w, int) or isinstance(w, bool) or w < 1:
                raise UserError(f"trimap widths must be whole numbers of pixels >= 1, got {w!r} in {list(widths)}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.widths = sorted(set(widths))
        n = num_classes
        self.add_state("confmat", torch.zeros(len(self.widths), n, n, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``preds`` are class indices (or logits with a class dim 1) of ``target``'s ``(N, H, W)``."""
        preds, target = _class_maps(preds, target, self.num_classes, self.ignore_index)
        valid = target != self.ignore_index
        n = self.num_classes
        cells = target * n + preds
        near, grown = _label_changes(target, border_is_change=False), 0
        for index, width in enumerate(self.widths):  # each band grows the last one
            near, grown = _grow(near, width - 1 - grown), width - 1
            band = (near[:, 0] > 0) & valid
            self.confmat[index] += torch.bincount(cells[band], minlength=n * n).reshape(n, n)

    def compute(self) -> dict[str, torch.Tensor]:
        return {
            f"trimap_mIoU/{width}": scores_from_confusion_matrix(confmat)["mIoU"]
            for width, confmat in zip(self.widths, self.confmat)
        }


class BoundaryIoU(Metric):
    """Boundary IoU per class and its mean over a split (module docstring).

    :meth:`compute` returns ``boundary_mIoU`` and ``boundary_IoU/<class name>``.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True

    def __init__(
        self,
        num_classes: int,
        dilation_ratio: float = DEFAULT_DILATION_RATIO,
        ignore_index: int = 255,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        ratio_ok = isinstance(dilation_ratio, (int, float)) and not isinstance(dilation_ratio, bool)
        if not ratio_ok or not 0 < dilation_ratio < 1:
            raise UserError(
                f"Boundary IoU dilation_ratio must be a fraction of the image diagonal in (0, 1) (the paper's is "
                f"0.02), got {dilation_ratio!r}"
            )
        self.num_classes = num_classes
        self.dilation_ratio = float(dilation_ratio)
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        if len(self.class_names) != num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {num_classes} classes")
        self.add_state("intersection", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("union", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``preds`` are class indices (or logits with a class dim 1) of ``target``'s ``(N, H, W)``."""
        preds, target = _class_maps(preds, target, self.num_classes, self.ignore_index)
        dilation = boundary_dilation(*target.shape[-2:], self.dilation_ratio)
        valid = target != self.ignore_index
        gt_boundary = near_label_change(target, dilation, border_is_change=True) & valid
        pred_boundary = near_label_change(preds, dilation, border_is_change=True) & valid
        both = gt_boundary & pred_boundary & (target == preds)
        n = self.num_classes
        intersection = torch.bincount(target[both], minlength=n)
        gt_area = torch.bincount(target[gt_boundary], minlength=n)
        pred_area = torch.bincount(preds[pred_boundary], minlength=n)
        self.intersection += intersection
        self.union += gt_area + pred_area - intersection

    def compute(self) -> dict[str, torch.Tensor]:
        union = self.union.double()
        nan = torch.tensor(float("nan"), dtype=union.dtype, device=union.device)
        iou = torch.where(union > 0, self.intersection.double() / union.clamp(min=1), nan)
        scores = {"boundary_mIoU": iou.nanmean()}
        scores.update({f"boundary_IoU/{name}": value for name, value in zip(self.class_names, iou)})
        return scores


def _class_maps(
    preds: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(preds, target)`` as int64 ``(N, H, W)`` class maps, checked: same shape, labels in range."""
    if preds.dim() == target.dim() + 1:
        preds = preds.argmax(dim=1)
    if preds.shape != target.shape or target.dim() != 3:
        raise ValueError(f"predictions {tuple(preds.shape)} and target {tuple(target.shape)} must both be (N, H, W)")
    preds, target = preds.long(), target.long()
    bad_target = ((target >= num_classes) & (target != ignore_index)) | (target < 0)
    if bad_target.any():
        bad = target[bad_target].unique().tolist()
        raise ValueError(f"target holds values {bad} that are neither a class (< {num_classes}) nor ignore")
    bad_preds = (preds < 0) | (preds >= num_classes)
    if bad_preds.any():
        bad = preds[bad_preds].unique().tolist()
        raise ValueError(f"predictions must be class indices in [0, {num_classes}), got {bad}")
    return preds, target


def _label_changes(labels: torch.Tensor, border_is_change: bool) -> torch.Tensor:
    """Float ``(N, 1, H, W)``, 1 at the pixels with a differently labelled 8-neighbour (with ``border_is_change``
    pixels outside the image count as one), else 0.

    A pixel is within ``r >= 1`` pixels of a label change exactly when one of these is within ``r - 1`` of it (on
    the way to the differing pixel the label changes between two neighbours, the first of which is one), so every
    band is this map grown by a sliding max: one plane instead of a max and a min plane per band."""
    planes = labels[:, None].float()  # labels up to 2^24 are exact in float32
    if border_is_change:  # -1, a value no label has; the pooling's own padding never wins, so it is "no pixel"
        planes = F.pad(planes, (1, 1, 1, 1), value=-1.0)
    maximum, minimum = _max_pool_square(planes, 1), -_max_pool_square(-planes, 1)
    if border_is_change:
        planes, maximum, minimum = (plane[..., 1:-1, 1:-1] for plane in (planes, maximum, minimum))
    return ((maximum != planes) | (minimum != planes)).float()


def _grow(plane: torch.Tensor, radius: int) -> torch.Tensor:
    """``plane``'s max over ``(2 radius + 1)`` squares (pooling a square's max over a square of another radius gives
    the max over the larger square, so bands grow step by step); radius < 0 empties it."""
    if radius < 0:
        return torch.zeros_like(plane)
    return plane if radius == 0 else _max_pool_square(plane, radius)


def _max_pool_square(planes: torch.Tensor, radius: int) -> torch.Tensor:
    """Max over the ``(2 radius + 1)`` square around each pixel of ``(N, 1, H, W)`` planes (pixels beyond the edge
    count as -inf, i.e. are not there): a sliding max along each axis."""
    return _sliding_max(_sliding_max(planes, radius, dim=-2), radius, dim=-1)


def _sliding_max(planes: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Max over ``[i - radius, i + radius]`` along ``dim``, in ``O(log radius)`` tensor operations: maxima over
    spans of 1, 2, 4, ... pixels, then the window as two overlapping spans (so a 93-pixel window costs 7
    elementwise maxima, not 93 comparisons per pixel as a max-pooling does)."""
    length, size = planes.shape[dim], 2 * radius + 1
    pad = [0, 0] * (-dim - 1) + [radius, radius]
    running, span = F.pad(planes, pad, value=float("-inf")), 1
    while 2 * span <= size:
        count = running.shape[dim] - span
        running = torch.maximum(running.narrow(dim, 0, count), running.narrow(dim, span, count))
        span *= 2
    return torch.maximum(running.narrow(dim, 0, length), running.narrow(dim, size - span, length))
