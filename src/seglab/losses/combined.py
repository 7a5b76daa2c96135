"""A weighted sum of losses, each term kept for logging."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch import nn

from seglab.runtime.errors import UserError


class CombinedLoss(nn.Module):
    """``sum(weight_i * term_i(logits, target))``, e.g. cross-entropy + 0.5 Dice.

    After each call, :attr:`last_terms` holds every term's unweighted value (detached), which
    :class:`~seglab.tasks.SemanticSegmentationModule` logs as ``train/loss/<name>``.

    Args:
        terms: the losses by name (each called as ``loss(logits, target)``).
        weights: one weight per term, in the order of ``terms`` (default: all 1).
    """

    def __init__(self, terms: Mapping[str, nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not terms:
            raise UserError("loss.terms is empty: name at least one loss to combine")
        weights = [1.0] * len(terms) if weights is None else [float(w) for w in weights]
        if len(weights) != len(terms):
            raise UserError(
                f"loss.weights has {len(weights)} entries but loss.terms has {len(terms)} ({', '.join(terms)}); "
                "give one weight per term, in that order"
            )
        self.terms = nn.ModuleDict(terms)
        self.weights = weights
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        values = {name: term(logits, target) for name, term in self.terms.items()}
        self.last_terms = {name: value.detach() for name, value in values.items()}
        return sum(weight * value for weight, value in zip(self.weights, values.values()))
