"""Fast high-dimensional Gaussian filtering on the permutohedral lattice (Adams, Baek and Davis, Eurographics 2010).

Filtering ``out_i = sum_j exp(-|f_i - f_j|^2 / 2) v_j`` over ``P`` points costs ``O(P^2)`` done directly. The
lattice does it in ``O(P d^2)``: each point's feature vector is lifted onto the hyperplane ``x . 1 = 0`` of
``R^(d+1)``, which the permutohedral lattice ``A*_d`` tiles with simplices; each value is *splatted* onto the
``d + 1`` vertices of its enclosing simplex with barycentric weights, the lattice is *blurred* with a ``[1 2 1]``
kernel along each of its ``d + 1`` axes, and every point *slices* its result back out with the same weights. The
features are scaled by ``sqrt(2/3) (d + 1)`` (the paper's choice) so that splat + blur + slice together
approximate a Gaussian of standard deviation 1 in feature units.

Only the lattice points that some simplex touches are stored. Their integer coordinates are hashed to one int64
key each (all coordinates of a lattice point share their remainder modulo ``d + 1``, so a key holds the remainder
and the quotients); the keys are sorted once, and neighbours along each axis are found with ``searchsorted``.
Splatting and slicing are sparse (CSR) matrix products, so the filter runs on the CPU and the GPU alike.

The result approximates the Gaussian sum *up to a scale* that depends on how densely the points fill the lattice;
callers normalise it (see :class:`seglab.inference.crf.DenseCRF`), as Krähenbühl's implementation does.
"""

from __future__ import annotations

import math
import warnings

import torch

# Largest key the int64 hash may produce.
_MAX_KEY = 2**62


class LatticeTooLarge(ValueError):
    """The features span too many standard deviations for the lattice's int64 keys."""


class PermutohedralLattice:
    """The lattice for ``features`` ``(P, d)``; :meth:`filter` blurs values ``(P, C)`` at those points.

    The features are in units of the Gaussian's standard deviation (e.g. pixel position / theta). Building the
    lattice (the sort of ``P (d + 1)`` keys) is done once; each :meth:`filter` call is two sparse products and
    ``d + 1`` blurs, all sparse products over the stored lattice points.
    """

    def __init__(self, features: torch.Tensor) -> None:
        if features.dim() != 2 or features.shape[1] < 1:
            raise ValueError(f"features must be (points, dims), got {tuple(features.shape)}")
        points, dims = features.shape
        self.points, self.dims = points, dims
        remainder0, rank, barycentric = _enclosing_simplices(features.double())
        # Vertex k of a point's simplex: remainder0 + k - (d + 1) * [rank >= d + 1 - k] in each coordinate. Its
        # remainder modulo d + 1 is k; its quotients are remainder0 / (d + 1) - [rank >= d + 1 - k].
        device = features.device
        order = dims + 1
        quotient0 = torch.div(remainder0, order, rounding_mode="floor")[:, :dims]
        low = quotient0.min(0).values - 2  # room for the neighbours' quotients (+-1) and the shift (-1)
        span = quotient0.max(0).values - low + 2
        strides = torch.cumprod(torch.cat([span.new_ones(1), span[:-1]]), 0)
        if order * math.prod(span.tolist()) >= _MAX_KEY:
            raise LatticeTooLarge(
                "the permutohedral lattice's keys would overflow int64: the features span too many standard "
                "deviations (a kernel width too small for the image)"
            )
        self._strides = strides
        base = ((quotient0 - low) * strides).sum(1)  # (P,)
        # Vertex k lowers the quotients of the coordinates ranked d + 1 - k and below: its key drops by the sum of
        # their strides, a running sum over the coordinates in rank order (the last coordinate has no stride).
        by_rank = torch.zeros_like(rank).scatter_(1, rank[:, :dims], strides.expand(points, dims))
        lowered = torch.cat([by_rank.new_zeros(points, 1), by_rank.flip(1).cumsum(1)[:, :dims]], dim=1)
        keys = torch.arange(order, device=device) + order * (base[:, None] - lowered)  # (P, d + 1)

        sorted_keys, entry_order = torch.sort(keys.reshape(-1), stable=True)
        is_new = torch.ones_like(sorted_keys, dtype=torch.bool)
        is_new[1:] = sorted_keys[1:] != sorted_keys[:-1]
        vertex_of_sorted = torch.cumsum(is_new.long(), 0) - 1
        self._keys = sorted_keys[is_new]
        self.vertices = int(self._keys.numel())
        vertex = torch.empty_like(vertex_of_sorted).scatter_(0, entry_order, vertex_of_sorted).view(points, order)

        # Splat: (vertices x points), the entries grouped by vertex (stable sort: points ascending in each row).
        counts = torch.bincount(vertex_of_sorted, minlength=self.vertices)
        self._splat = _csr(
            torch.cat([counts.new_zeros(1), counts.cumsum(0)]),
            entry_order // order,
            barycentric.reshape(-1)[entry_order],
            (self.vertices, points),
        )
        # Slice: (points x vertices), d + 1 entries a row, sorted by vertex.
        row_vertex, row_order = torch.sort(vertex, dim=1)
        self._slice = _csr(
            torch.arange(0, points * order + 1, order, device=device),
            row_vertex.reshape(-1),
            barycentric.gather(1, row_order).reshape(-1),
            (points, self.vertices),
        )
        self._blurs = [self._blur_matrix(axis) for axis in range(order)]

    def filter(self, values: torch.Tensor) -> torch.Tensor:
        """``(P, C)`` values blurred by the lattice's Gaussian (up to a data-dependent scale), in float32."""
        if values.dim() != 2 or values.shape[0] != self.points:
            raise ValueError(f"values must be ({self.points}, channels), got {tuple(values.shape)}")
        lattice = self._splat @ values.float()
        for blur in self._blurs:
            lattice = blur @ lattice
        return self._slice @ lattice

    def _blur_matrix(self, axis: int) -> torch.Tensor:
        """The ``[1 2 1] / 4`` blur along lattice axis ``axis`` as a (vertices x vertices) CSR matrix; a neighbour
        that is not stored contributes nothing."""
        plus = self._lookup(self._keys + self._key_step(axis))
        found = plus < self.vertices
        own = torch.arange(self.vertices, device=plus.device)
        minus = torch.full_like(plus, self.vertices)
        minus[plus[found]] = own[found]  # w = v + u  <=>  v = w - u
        # Sort (minus, own, plus) in each row (column indices of a CSR row ascend); absent ones (= vertices) last.
        low, high = torch.minimum(minus, plus), torch.maximum(minus, plus)
        first, last = torch.minimum(low, own), torch.maximum(high, own)
        columns = torch.stack([first, low + high + own - first - last, last], dim=1)
        weights = torch.where(columns == own[:, None], 0.5, 0.25).float()
        stored = columns < self.vertices
        counts = stored.sum(1)
        return _csr(
            torch.cat([counts.new_zeros(1), counts.cumsum(0)]),
            columns[stored],
            weights[stored],
            (self.vertices, self.vertices),
        )

    def _key_step(self, axis: int) -> torch.Tensor:
        """Per stored vertex, the key difference to its neighbour ``v + u_axis``, ``u_axis = 1 - (d + 1) e_axis``.

        With remainder r < d, adding ``u`` raises the remainder by one and lowers the quotient of coordinate
        ``axis``; with r = d, the remainder wraps to 0 and every other coordinate's quotient rises by one (the
        last coordinate is not part of the key)."""
        order = self.dims + 1
        own = int(self._strides[axis]) if axis < self.dims else 0
        wraps = torch.remainder(self._keys, order) == self.dims
        wrapped_step = -self.dims + order * (int(self._strides.sum()) - own)
        return torch.where(wraps, wrapped_step, 1 - order * own)

    def _lookup(self, keys: torch.Tensor) -> torch.Tensor:
        """Indices of the stored vertices with ``keys``; ``vertices`` where there is none."""
        index = torch.searchsorted(self._keys, keys).clamp(max=self.vertices - 1)
        return torch.where(self._keys[index] == keys, index, self.vertices)


def _csr(rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A float32 CSR matrix; its column indices are sorted within each row by construction."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(rows, columns, values.float(), size=size, check_invariants=False)


def _enclosing_simplices(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each point, the remainder-0 lattice point of its enclosing simplex (``(P, d + 1)`` int64), the rank
    of each coordinate of the point's offset from it (0 = largest) and the barycentric weights of the simplex's
    ``d + 1`` vertices (``(P, d + 1)``, vertex k = the remainder-k corner)."""
    points, dims = features.shape
    order = dims + 1
    # Lift onto the hyperplane: column k of the (d + 1) x d embedding is (1, ..., 1, -k, 0, ..., 0) with k ones,
    # scaled by sqrt(2/3) (d + 1) / sqrt(k (k + 1)).
    k = torch.arange(1, order, dtype=features.dtype, device=features.device)
    scaled = features * (math.sqrt(2.0 / 3.0) * order / torch.sqrt(k * (k + 1)))
    zeros = scaled.new_zeros(points, 1)
    elevated = torch.cat([scaled.flip(1).cumsum(1).flip(1), zeros], 1) - torch.cat([zeros, scaled * k], 1)

    # Nearest point whose coordinates are multiples of d + 1, then moved onto the hyperplane (coordinate sum 0)
    # by shifting the coordinates that rounding treated worst.
    remainder0 = torch.round(elevated / order) * order
    excess = torch.round(remainder0.sum(1) / order).long()[:, None]
    offset = elevated - remainder0
    ranks = torch.arange(order, device=features.device).expand(points, order)
    rank = torch.empty_like(ranks).scatter_(1, torch.argsort(offset, dim=1, descending=True, stable=True), ranks)
    lower = (excess > 0) & (rank >= order - excess)
    raise_ = (excess < 0) & (rank < -excess)
    remainder0 = remainder0 - order * lower + order * raise_
    rank = rank + excess - order * lower + order * raise_

    # Barycentric weights from the sorted offsets y(0) >= ... >= y(d): b_k = (y(d-k) - y(d+1-k)) / (d + 1).
    offset = elevated - remainder0
    ordered = torch.empty_like(offset).scatter_(1, rank, offset)
    gaps = (ordered[:, :-1] - ordered[:, 1:]) / order
    barycentric = torch.cat([1 - gaps.sum(1, keepdim=True), gaps.flip(1)], 1)
    return remainder0.long(), rank, barycentric
