"""seglab: a Lightning + Hydra platform for semantic and instance segmentation."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("seglab")  # the one source: pyproject.toml's version, as installed
except PackageNotFoundError:  # a checkout on sys.path that was never installed
    __version__ = "0+unknown"
