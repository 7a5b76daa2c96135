"""Learning-rate schedules."""

from seglab.optim.poly import PolyLR

__all__ = ["PolyLR"]
