"""seglab: a Lightning + Hydra platform for semantic and instance segmentation."""

__version__ = "0.1.0"
