"""Lightning callbacks of the platform."""

from seglab.callbacks.config_snapshot import ConfigSnapshot
from seglab.callbacks.instance_prediction_writer import InstancePredictionWriter
from seglab.callbacks.prediction_writer import PredictionWriter
from seglab.callbacks.validation_media import ValidationMedia

__all__ = ["ConfigSnapshot", "InstancePredictionWriter", "PredictionWriter", "ValidationMedia"]
