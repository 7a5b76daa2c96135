"""Stand-ins for a trained model where a test needs its predictions, not its training."""

from __future__ import annotations

import torch


def brightness_instances(images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """One 'disk' instance per image, its bright red pixels (a stand-in for a trained model: deterministic per image)."""
    predictions = []
    for image in images:
        mask = image[0] > 0
        predictions.append({"masks": mask[None], "labels": torch.tensor([1]), "scores": torch.tensor([0.8]), "semantic": mask.long()})
    return predictions
