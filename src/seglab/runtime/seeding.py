"""Random streams that are pure functions of the run's seed and a position, so a resumed run draws what the
uninterrupted run drew.

A killed run that resumes from a checkpoint has consumed the global random generators differently (loader
iterators, sanity checks and restores all draw from them), so carrying their state over is fragile. Instead each
sample's augmentation is seeded from (seed, epoch, index) (:mod:`seglab.data.resumable`) and each training step
from (seed, batch, rank) (:class:`seglab.callbacks.step_seeding.StepSeeding`).
"""

from __future__ import annotations

import random

import numpy as np
import torch


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integers (``numpy.random.SeedSequence``): nearby keys give unrelated seeds."""
    state = np.random.SeedSequence([int(k) % 2**64 for k in keys]).generate_state(1, np.uint64)[0]
    return int(state) >> 1  # shifted as a Python int: numpy 1.x cannot shift a uint64 by a (signed) Python int


def seed_generators(seed: int, cuda: bool = False) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch's CPU generator (and every GPU's with ``cuda``)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.default_generator.manual_seed(seed)
    if cuda and torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
