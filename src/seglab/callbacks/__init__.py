"""Training-loop callbacks that belong to no other role: the non-finite loss guard and per-step seeding."""

from seglab.callbacks.nonfinite import NonFiniteLossGuard
from seglab.callbacks.step_seeding import StepSeeding

__all__ = ["NonFiniteLossGuard", "StepSeeding"]
