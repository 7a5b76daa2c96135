"""Fully connected CRF post-processing (Krähenbühl and Koltun, NIPS 2011), as DeepLab v1 and v2 used it.

The CRF's energy over a labelling ``x`` is ``sum_i psi_u(x_i) + sum_{i<j} mu(x_i, x_j) k(i, j)`` with

- unary ``psi_u(x_i) = -log P(x_i)``, ``P`` the network's softmax at the input resolution;
- Potts compatibility ``mu(l, l') = [l != l']``;
- two Gaussian kernels over pixel positions ``p`` (pixels) and RGB colours ``I`` (0-255)::

      k(i, j) = w1 exp(-|p_i - p_j|^2 / (2 theta_alpha^2) - |I_i - I_j|^2 / (2 theta_beta^2))   appearance
              + w2 exp(-|p_i - p_j|^2 / (2 theta_gamma^2))                                      smoothness

Mean-field inference (the paper's Algorithm 1) starts from ``Q = softmax(-psi_u)`` and repeats, ``iterations``
times, ``Q_i(l) ∝ exp(-psi_u(l) + sum_m w_m [K_m Q]_i(l))`` (under Potts the label-independent part of the
message cancels in the normalisation).

**Kernel normalisation.** The paper writes ``[K_m Q]_i`` as a plain sum over ``j != i``. The authors' released
code, which DeepLab used and for which the DeepLab weights were tuned, divides each kernel by its row sum
``D_i = sum_j k_m(i, j)`` (``j = i`` included) -- without it a kernel with ``theta_alpha = 121`` sums to thousands
and ``w1 = 4`` would swamp any unary. seglab follows the code: ``normalization="pixel"`` is ``D^-1 K Q`` (the 2011
code and DeepLab); ``"symmetric"`` is ``D^-1/2 K D^-1/2 Q`` (the default of the 2013 code behind pydensecrf).

**Defaults** are DeepLab v1's (Chen et al., ICLR 2015) for its DeepLab-LargeFOV model. Both DeepLab papers (v1;
v2, TPAMI 2017) fix ``w2 = 3``, ``theta_gamma = 3`` and 10 mean-field iterations and cross-validate ``w1``,
``theta_alpha``, ``theta_beta`` on 100 validation images; the values released with DeepLab-LargeFOV (the
``DenseCRF`` layer of its test prototxt) are ``bi_w: 4, bi_xy_std: 121, bi_rgb_std: 5, pos_w: 3, pos_xy_std: 3,
max_iter: 10``. DeepLab v2's released ResNet-101 PASCAL VOC model uses ``w1=4, theta_alpha=67, theta_beta=3,
w2=3, theta_gamma=1``.

**Methods.** ``"exact"`` computes both kernels exactly: the appearance kernel as the dense ``P x P`` matrix in
chunks (``O(P^2)`` per iteration, for small images), the smoothness kernel, which is separable, as two 1-D
Gaussian matrix products. ``"permutohedral"`` approximates both with the permutohedral lattice
(:mod:`seglab.inference.permutohedral`, ``O(P)`` per iteration, for full-size images), as Krähenbühl's code
does. ``"pydensecrf"`` runs that C++ code through the ``pydensecrf2`` package (``pip install 'seglab[crf]'``;
CPU only). ``"auto"`` takes ``"exact"`` up to ``exact_max_pixels`` pixels and ``"permutohedral"`` above. The
torch methods run on the device of the inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from seglab.inference.permutohedral import LatticeTooLarge, PermutohedralLattice
from seglab.runtime.errors import UserError

METHODS = ("auto", "exact", "permutohedral", "pydensecrf")
NORMALIZATIONS = ("pixel", "symmetric")
INSTALL_HINT = "pip install 'seglab[crf]'"
# The exact method keeps the whole appearance kernel in memory up to this many entries (128 MiB in float32,
# images up to about 90 x 90) and recomputes it chunk by chunk in every iteration above.
_CACHED_KERNEL_ENTRIES = 2**25
# Kernel chunk size of the exact method (entries).
_CHUNK_ENTRIES = 2**22

Filter = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DenseCRF:
    """Mean-field inference in the fully connected CRF; call it with ``(probs, images)`` (see :meth:`__call__`).

    Args:
        iterations: mean-field steps (DeepLab: 10).
        w1, theta_alpha, theta_beta: weight of the appearance kernel and its position / colour standard
            deviations, in pixels and 0-255 colour units.
        w2, theta_gamma: weight of the smoothness kernel and its position standard deviation (pixels).
        normalization: ``"pixel"`` or ``"symmetric"`` (see the module docstring).
        method: ``"auto"``, ``"exact"``, ``"permutohedral"`` or ``"pydensecrf"``.
        exact_max_pixels: the largest image (``H * W``) for which ``"auto"`` takes the exact method.
    """

    iterations: int = 10
    w1: float = 4.0
    theta_alpha: float = 121.0
    theta_beta: float = 5.0
    w2: float = 3.0
    theta_gamma: float = 3.0
    normalization: str = "pixel"
    method: str = "auto"
    exact_max_pixels: int = 1024

    def __post_init__(self) -> None:
        if not _is_int(self.iterations) or self.iterations < 1:
            raise UserError(f"CRF iterations must be an integer >= 1 (DeepLab used 10), got {self.iterations!r}")
        for name in ("theta_alpha", "theta_beta", "theta_gamma"):
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                raise UserError(f"CRF {name} must be a positive number (a standard deviation), got {value!r}")
        for name in ("w1", "w2"):
            value = getattr(self, name)
            if not _is_number(value) or not value >= 0:
                raise UserError(f"CRF {name} must be a kernel weight >= 0 (0 turns the kernel off), got {value!r}")
        if self.normalization not in NORMALIZATIONS:
            choices = ", ".join(NORMALIZATIONS)
            raise UserError(f"CRF normalization must be one of {choices}, got {self.normalization!r}")
        if self.method not in METHODS:
            raise UserError(f"CRF method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not _is_int(self.exact_max_pixels) or self.exact_max_pixels < 0:
            raise UserError(f"CRF exact_max_pixels must be an integer >= 0, got {self.exact_max_pixels!r}")
        if self.method == "pydensecrf":
            _import_pydensecrf()

    def method_for(self, height: int, width: int) -> str:
        """The method that refines an image of ``height x width`` pixels (``"auto"`` resolved)."""
        if self.method != "auto":
            return self.method
        return "exact" if height * width <= self.exact_max_pixels else "permutohedral"

    def __call__(self, probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """Refined class probabilities ``(N, C, H, W)`` from softmax probabilities ``probs`` ``(N, C, H, W)`` and
        the un-normalised uint8 RGB ``images`` ``(N, 3, H, W)`` they were predicted from.

        Computed in float64 when ``probs`` is float64, else float32, on ``probs``' device; each image of the
        batch is refined on its own.
        """
        if probs.dim() != 4:
            raise ValueError(f"probs must be (N, C, H, W), got {tuple(probs.shape)}")
        batch, _, height, width = probs.shape
        if images.shape != (batch, 3, height, width):
            raise ValueError(f"images must be (N, 3, H, W) = {(batch, 3, height, width)}, got {tuple(images.shape)}")
        if images.dtype != torch.uint8:
            raise ValueError(f"images must be the un-normalised uint8 RGB images, got dtype {images.dtype}")
        dtype = torch.float64 if probs.dtype == torch.float64 else torch.float32
        if batch == 0:
            return probs.to(dtype, copy=True)
        method = self.method_for(height, width)
        if method == "pydensecrf":
            return _pydensecrf_refine(self, probs, images).to(dtype)
        probs = probs.to(dtype)
        images = images.to(probs.device)
        return torch.stack([self._refine(p, image, method) for p, image in zip(probs, images)])

    def _refine(self, probs: torch.Tensor, image: torch.Tensor, method: str) -> torch.Tensor:
        """Mean-field inference for one image: ``probs`` ``(C, H, W)``, ``image`` ``(3, H, W)``."""
        classes, height, width = probs.shape
        dtype = probs.dtype
        log_probs = probs.clamp_min(torch.finfo(dtype).tiny).log().reshape(classes, -1).T.contiguous()  # (P, C)
        features = _pixel_features(image, self.theta_alpha, self.theta_beta, self.theta_gamma)
        appearance, smoothness = features[:, :5], features[:, 5:]
        kernels: list[tuple[float, Filter]] = []
        if self.w1 > 0:
            kernel = _ExactGaussian(appearance, dtype) if method == "exact" else self._lattice(appearance, dtype)
            kernels.append((self.w1, kernel))
        if self.w2 > 0:
            kernel = (
                _SeparableGaussian(height, width, self.theta_gamma, log_probs)
                if method == "exact"
                else self._lattice(smoothness, dtype)
            )
            kernels.append((self.w2, kernel))
        ones = log_probs.new_ones(len(log_probs), 1)
        messages = [_weighted_message(kernel, weight, ones, self.normalization) for weight, kernel in kernels]
        q = torch.softmax(log_probs, dim=1)
        for _ in range(self.iterations):
            logits = log_probs.clone()
            for message in messages:
                logits += message(q)
            q = torch.softmax(logits, dim=1)
        return q.T.reshape(classes, height, width)

    def _lattice(self, features: torch.Tensor, dtype: torch.dtype) -> Filter:
        try:
            lattice = PermutohedralLattice(features)
        except LatticeTooLarge:
            raise UserError(
                f"CRF thetas (theta_alpha={self.theta_alpha}, theta_beta={self.theta_beta}, theta_gamma="
                f"{self.theta_gamma}) are too small for the permutohedral lattice on this image; raise them or "
                "use method 'exact'"
            ) from None
        return lambda q: lattice.filter(q).to(dtype)


def _pixel_features(image: torch.Tensor, theta_alpha: float, theta_beta: float, theta_gamma: float) -> torch.Tensor:
    """``(P, 7)`` float64 features of the pixels of ``image`` ``(3, H, W)`` in row-major order: the appearance
    kernel's ``(x, y) / theta_alpha, (r, g, b) / theta_beta`` and the smoothness kernel's ``(x, y) / theta_gamma``."""
    _, height, width = image.shape
    y, x = torch.meshgrid(
        torch.arange(height, device=image.device), torch.arange(width, device=image.device), indexing="ij"
    )
    position = torch.stack([x, y], dim=-1).reshape(-1, 2).double()
    colour = image.reshape(3, -1).T.double()
    return torch.cat([position / theta_alpha, colour / theta_beta, position / theta_gamma], dim=1)


def _weighted_message(kernel: Filter, weight: float, ones: torch.Tensor, normalization: str) -> Filter:
    """``q -> w D^-1 K q`` (``"pixel"``) or ``w D^-1/2 K D^-1/2 q`` (``"symmetric"``); ``D = K 1`` is computed
    once (``ones`` is the ``(P, 1)`` vector of ones)."""
    row_sums = kernel(ones)
    if normalization == "pixel":
        scale = weight / row_sums
        return lambda q: kernel(q).mul_(scale)
    root = row_sums.rsqrt()
    scale = weight * root
    return lambda q: kernel(q * root).mul_(scale)


class _ExactGaussian:
    """``v -> K v`` with ``K_ij = exp(-|f_i - f_j|^2 / 2)`` summed exactly (``j = i`` included), in chunks.

    Squared distances are ``|f_i|^2 + |f_j|^2 - 2 f_i . f_j`` in float64 (one matrix product a chunk), where the
    cancellation costs about 1e-12 for features up to 10^2; the kernel is applied in ``dtype``."""

    def __init__(self, features: torch.Tensor, dtype: torch.dtype) -> None:
        self.features, self.dtype = features.double(), dtype
        self.norms = (self.features**2).sum(1)
        points = features.shape[0]
        self.rows = max(1, _CHUNK_ENTRIES // points)
        self.cached = list(self._chunks()) if points * points <= _CACHED_KERNEL_ENTRIES else None

    def _chunks(self):
        f, norms = self.features, self.norms
        for start in range(0, f.shape[0], self.rows):
            rows = slice(start, start + self.rows)
            squared = (norms[rows, None] + norms[None, :] - 2 * f[rows] @ f.T).clamp_min_(0)
            yield torch.exp(-0.5 * squared).to(self.dtype)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        return torch.cat([chunk @ values for chunk in (self.cached or self._chunks())])


class _SeparableGaussian:
    """``v -> K v`` with ``K_ij = exp(-|p_i - p_j|^2 / (2 theta^2))`` over the pixel positions of an ``height x
    width`` image (``j = i`` included), exactly: ``K`` is the Kronecker product of a vertical and a horizontal
    1-D Gaussian matrix, applied as two matrix products."""

    def __init__(self, height: int, width: int, theta: float, like: torch.Tensor) -> None:
        self.vertical, self.horizontal = (_gaussian_matrix(size, theta).to(like) for size in (height, width))

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        height, width = len(self.vertical), len(self.horizontal)
        vertical = self.vertical @ values.reshape(height, -1)
        return (self.horizontal @ vertical.reshape(height, width, -1)).reshape(values.shape)


def _gaussian_matrix(size: int, theta: float) -> torch.Tensor:
    offsets = torch.arange(size, dtype=torch.float64)
    return torch.exp(-0.5 * ((offsets[:, None] - offsets[None, :]) / theta) ** 2)


def _import_pydensecrf():
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError:
        raise UserError(
            f"CRF method 'pydensecrf' needs the pydensecrf2 package, which is not installed: {INSTALL_HINT} "
            "(or choose method 'auto', 'exact' or 'permutohedral', which need nothing extra)"
        ) from None
    return dcrf


def _pydensecrf_refine(crf: DenseCRF, probs: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """The same CRF through Krähenbühl's C++ implementation, one image at a time on the CPU."""
    dcrf = _import_pydensecrf()
    normalization = {"pixel": dcrf.NORMALIZE_AFTER, "symmetric": dcrf.NORMALIZE_SYMMETRIC}[crf.normalization]
    _, classes, height, width = probs.shape
    unaries = -probs.detach().float().clamp_min(torch.finfo(torch.float32).tiny).log().cpu().numpy()
    pictures = images.permute(0, 2, 3, 1).cpu().numpy()
    refined = []
    for unary, picture in zip(unaries, pictures):
        model = dcrf.DenseCRF2D(width, height, classes)
        model.setUnaryEnergy(np.ascontiguousarray(unary.reshape(classes, -1)))
        if crf.w2 > 0:
            model.addPairwiseGaussian(sxy=crf.theta_gamma, compat=crf.w2, normalization=normalization)
        if crf.w1 > 0:
            model.addPairwiseBilateral(
                sxy=crf.theta_alpha,
                srgb=crf.theta_beta,
                rgbim=np.ascontiguousarray(picture),
                compat=crf.w1,
                normalization=normalization,
            )
        refined.append(np.asarray(model.inference(crf.iterations)).reshape(classes, height, width))
    return torch.from_numpy(np.stack(refined)).to(probs.device)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
