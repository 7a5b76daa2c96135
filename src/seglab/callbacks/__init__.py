"""Lightning callbacks of the platform."""

from seglab.callbacks.config_snapshot import ConfigSnapshot

__all__ = ["ConfigSnapshot"]
