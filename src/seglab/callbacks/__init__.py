"""Lightning callbacks of the platform."""

from seglab.callbacks.config_snapshot import ConfigSnapshot
from seglab.callbacks.instance_prediction_writer import InstancePredictionWriter
from seglab.callbacks.model_checkpoint import ModelCheckpoint
from seglab.callbacks.nonfinite import NonFiniteLossGuard
from seglab.callbacks.prediction_writer import PredictionWriter
from seglab.callbacks.preemption import PreemptionCheckpoint, Preempted
from seglab.callbacks.resume_loggers import ResumeLoggers
from seglab.callbacks.step_seeding import StepSeeding
from seglab.callbacks.validation_media import ValidationMedia

__all__ = [
    "ConfigSnapshot",
    "InstancePredictionWriter",
    "ModelCheckpoint",
    "NonFiniteLossGuard",
    "PredictionWriter",
    "PreemptionCheckpoint",
    "Preempted",
    "ResumeLoggers",
    "StepSeeding",
    "ValidationMedia",
]
