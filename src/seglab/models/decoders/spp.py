"""Spatial pyramid pooling (He et al., 2014, SPPNet): a fixed-length vector from a map of any size."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seglab.runtime.errors import UserError

POOLS = {"max": F.adaptive_max_pool2d, "avg": F.adaptive_avg_pool2d}


class SPP(nn.Module):
    """Pool a ``(N, C, H, W)`` map over ``l x l`` bins for every level ``l`` and concatenate the bins.

    ``forward`` returns ``(N, sum(l * l) * C)`` whatever ``H`` and ``W`` (21 x C for levels 4, 2, 1), so it can
    feed a fully connected classifier. Bins are adaptive: a map smaller than a level (even 1x1) still gives
    ``l x l`` bins, some of which then share pixels. :meth:`pyramid` returns the pooled maps themselves, for
    context modules that upsample them back (see :class:`PyramidPoolingDecoder`).

    Args:
        levels: bins per side of each pyramid level.
        pool: ``"max"`` (SPPNet) or ``"avg"`` (PSPNet).
    """

    def __init__(self, levels: Sequence[int] = (4, 2, 1), pool: str = "max") -> None:
        super().__init__()
        if pool not in POOLS:
            raise UserError(f"pyramid pooling pool={pool!r} is not supported; use one of {sorted(POOLS)}")
        self.levels = tuple(int(level) for level in levels)
        if not self.levels or min(self.levels) < 1:
            raise UserError(f"pyramid pooling levels must be positive bin counts, got {list(levels)}")
        self.pool = pool

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """One ``(N, C, l, l)`` map per level."""
        return [POOLS[self.pool](x, level) for level in self.levels]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([pooled.flatten(1) for pooled in self.pyramid(x)], dim=1)
