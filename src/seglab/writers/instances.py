"""Writing instance predictions: in benchmark formats (``export.format`` of eval.py for instance models: COCO
results json and the Cityscapes instance-level format), and predict.py's picture + json per image.

- COCO (``cocoapi`` ``loadRes`` / ``COCOeval(iouType="segm")``): a list of ``{"image_id", "category_id",
  "segmentation": RLE, "score"}`` with the dataset's own image and category ids.
- Cityscapes (``cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling``): per image a text file
  ``<city>_<seq>_<frame>.txt`` whose lines read ``<mask png, relative to the txt> <label id> <score>``, and one
  binary PNG per instance (non-zero inside), label ids from the official table (person 24, car 26, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as coco_mask

INSTANCE_EXPORT_FORMATS = ("coco", "cityscapes")


def encode_masks(masks: torch.Tensor) -> list[dict[str, Any]]:
    """Masks (K, H, W) as COCO's compressed RLE, JSON-ready (``{"size": [H, W], "counts": str}``)."""
    masks = masks.detach().cpu().numpy().astype(np.uint8)
    if not len(masks):
        return []
    rles = coco_mask.encode(np.asfortranarray(masks.transpose(1, 2, 0)))
    return [{"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in rles]


def coco_results(prediction: Mapping[str, torch.Tensor], image_id: int, class_to_category: Mapping[int, int]) -> list[dict[str, Any]]:
    """The COCO results entries of one image's prediction (``masks``, ``labels``, ``scores``)."""
    return [
        {"image_id": int(image_id), "category_id": int(class_to_category[int(label)]), "segmentation": rle, "score": float(score)}
        for rle, label, score in zip(encode_masks(prediction["masks"]), prediction["labels"].tolist(), prediction["scores"].tolist())
    ]


def write_cityscapes_instances(
    prediction: Mapping[str, torch.Tensor], name: str, directory: Path, train_id_to_label_id: np.ndarray
) -> Path:
    """Write one image's prediction as ``<directory>/<name>.txt`` and ``<directory>/masks/<name>_<k>.png``;
    ``name`` is the image's ``<city>_<seq>_<frame>`` stem. Returns the txt file."""
    mask_dir = directory / "masks"
    mask_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    masks = prediction["masks"].detach().cpu().numpy()
    for k, (mask, label, score) in enumerate(zip(masks, prediction["labels"].tolist(), prediction["scores"].tolist())):
        png = mask_dir / f"{name}_{k:04d}.png"
        Image.fromarray(mask.astype(np.uint8) * 255, mode="L").save(png)
        lines.append(f"masks/{png.name} {int(train_id_to_label_id[label])} {score:.6f}\n")
    txt = directory / f"{name}.txt"
    txt.write_text("".join(lines))
    return txt


def write_instances(prediction: Mapping[str, torch.Tensor], image: np.ndarray, class_names: list[str], out_dir: Path, stem: str) -> list[Path]:
    """predict.py's files for one image: ``<stem>_instances.png`` (each instance in its own colour, captioned
    ``<class> <score>``) and ``<stem>_instances.json`` (per instance: ``class``, ``class_id``, ``score`` and the mask
    as COCO RLE)."""
    from seglab.tracking.metrics_file import write_json
    from seglab.viz.instances import draw_instances

    out_dir.mkdir(parents=True, exist_ok=True)
    picture = out_dir / f"{stem}_instances.png"
    Image.fromarray(draw_instances(image, prediction, class_names)).save(picture)
    labels, scores = prediction["labels"].tolist(), prediction["scores"].tolist()
    found = [
        {"class": class_names[label], "class_id": label, "score": score, "segmentation": rle}
        for label, score, rle in zip(labels, scores, encode_masks(prediction["masks"]))
    ]
    return [picture, write_json({"instances": found}, out_dir / f"{stem}_instances.json")]
