"""The device a command runs on (predict.py's ``predict.device``, the model report's ``device``): one rule for both."""

from __future__ import annotations

import torch

from seglab.runtime.errors import UserError


def choose_device(name: str, option: str) -> torch.device:
    """``auto`` (a GPU when there is one, else the CPU) or a torch device name such as ``cpu`` or ``cuda:1``;
    a name torch does not know, or a CUDA device on a machine without one, is a :class:`UserError` naming ``option``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"{option}={name!r} is not a device; use auto, cpu, cuda or cuda:<index>") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{option}={name} but no CUDA device is available; use {option}=cpu or {option}=auto")
    return device
