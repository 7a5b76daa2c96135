"""Seeds the global random generators before every training step from the run's seed and the step's position."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from seglab.runtime.seeding import derive_seed, seed_generators


class StepSeeding(L.Callback):
    """Before each training batch, seed Python, NumPy, torch and the GPUs from (seed, batch number, rank).

    Whatever drew from the generators before (a resume, a sanity check, a loader iterator), the random draws of a
    training step (dropout, stochastic layers) are then those of the same step in an uninterrupted run, and each
    DDP process draws its own. The data's randomness is seeded per sample (see :mod:`seglab.data.resumable`).

    Args:
        seed: the run's seed (default: torch's current seed, which is the run's ``seed`` once
            ``seed_everything`` ran). It is saved in checkpoints, so an unseeded run resumes with its own.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = torch.initial_seed() if seed is None else seed

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        seed_generators(derive_seed(self.seed, trainer.fit_loop.total_batch_idx, trainer.global_rank), cuda=True)

    def state_dict(self) -> dict[str, int]:
        return {"seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        self.seed = state_dict["seed"]
