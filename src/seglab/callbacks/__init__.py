"""Lightning callbacks of the platform."""

from seglab.callbacks.config_snapshot import ConfigSnapshot
from seglab.callbacks.prediction_writer import PredictionWriter

__all__ = ["ConfigSnapshot", "PredictionWriter"]
