"""Write tiny dataset trees in the published layouts and file formats (VOC, ADE20K, COCO, folder).

Each writer returns what it wrote (label arrays, masks), so tests compare the targets a dataset yields with what
the format's documentation says they mean.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

from seglab.data.datasets.coco_categories import COCO_2017_CLASS_NAMES

# Real COCO 2017 category ids: 1..90 with gaps (12, 26, 29, 30, 45, 66, 68, 69, 71, 83 are unused).
COCO_CATEGORY_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]


def voc_palette() -> list[int]:
    """The Pascal VOC colour map (the devkit's labelcolormap): class i's colour from the bits of i."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def _image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _blocks(rng: np.random.Generator, height: int, width: int, values: np.ndarray, block: int = 8) -> np.ndarray:
    grid = rng.choice(values, size=(-(-height // block), -(-width // block)))
    return np.kron(grid, np.ones((block, block), dtype=grid.dtype))[:height, :width].astype(np.uint8)


def write_voc_tree(root: Path, seed: int = 0, augmented: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """``root/VOCdevkit/VOC2012`` with JPEG images of different sizes, palette-PNG masks (0..20 and 255 object
    borders), the train/val lists and, with ``augmented``, SegmentationClassAug grey PNGs + train_aug.txt.
    Returns {split: {id: mask}}."""
    rng = np.random.default_rng(seed)
    voc = root / "VOCdevkit" / "VOC2012"
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (voc / folder).mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, np.ndarray]] = {}
    splits = {"train": ["2007_000032", "2007_000039"], "val": ["2007_000033", "2008_000002"]}
    sizes = [(40, 56), (48, 64), (36, 52), (44, 60)]
    for (split, ids), offset in zip(splits.items(), (0, 2)):
        written[split] = {}
        for index, image_id in enumerate(ids):
            height, width = sizes[offset + index]
            mask = _blocks(rng, height, width, np.arange(21))
            mask[::8, :] = 255  # boundary lines, as VOC outlines objects with 255
            Image.fromarray(_image(rng, height, width)).save(voc / "JPEGImages" / f"{image_id}.jpg", quality=95)
            png = Image.fromarray(mask, mode="P")
            png.putpalette(voc_palette())
            png.save(voc / "SegmentationClass" / f"{image_id}.png")
            written[split][image_id] = mask
        (voc / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    if augmented:
        (voc / "SegmentationClassAug").mkdir(exist_ok=True)
        aug_ids = [*splits["train"], "2008_000123"]
        written["train_aug"] = {}
        for image_id in aug_ids:
            height, width = 32, 48
            if image_id in written["train"]:
                height, width = written["train"][image_id].shape
            else:
                Image.fromarray(_image(rng, height, width)).save(voc / "JPEGImages" / f"{image_id}.jpg")
            mask = _blocks(rng, height, width, np.arange(21))  # SBD masks: grey PNGs, no borders
            Image.fromarray(mask, mode="L").save(voc / "SegmentationClassAug" / f"{image_id}.png")
            written["train_aug"][image_id] = mask
        (voc / "ImageSets" / "Segmentation" / "train_aug.txt").write_text("\n".join(aug_ids) + "\n")
    return written


def write_ade20k_tree(root: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """``root/ADEChallengeData2016/{images,annotations}/{training,validation}`` with annotation values 0..150
    (0 = other). Returns {split: {stem: raw annotation}}."""
    rng = np.random.default_rng(seed)
    base = root / "ADEChallengeData2016"
    written: dict[str, dict[str, np.ndarray]] = {}
    for split, prefix, count in (("training", "ADE_train", 3), ("validation", "ADE_val", 2)):
        (base / "images" / split).mkdir(parents=True, exist_ok=True)
        (base / "annotations" / split).mkdir(parents=True, exist_ok=True)
        written[split] = {}
        for index in range(1, count + 1):
            stem = f"{prefix}_{index:08d}"
            height, width = 40 + 4 * index, 56 - 4 * index
            raw = _blocks(rng, height, width, np.arange(151))
            raw[:8, :8] = 0  # "other" always appears
            Image.fromarray(_image(rng, height, width)).save(base / "images" / split / f"{stem}.jpg")
            Image.fromarray(raw, mode="L").save(base / "annotations" / split / f"{stem}.png")
            written[split][stem] = raw
    return written


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (crowd annotations): run lengths over the column-major pixels, zeros first."""
    flat = mask.flatten(order="F").astype(np.uint8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    return {"size": list(mask.shape), "counts": counts}


def write_coco_tree(
    root: Path,
    categories: dict[int, str] | None = None,
    object_categories: tuple[int, int, int] = (1, 3, 90),
    seed: int = 0,
) -> dict[str, list[dict]]:
    """``root/annotations/instances_{train2017,val2017}.json`` and ``root/{train2017,val2017}/<12 digits>.jpg``.

    ``categories`` ({id: name}, default COCO 2017's 80) are the json's categories. Each split has an image with a
    polygon object (an L shape), a compressed-RLE object and a third object, of ``object_categories`` (default:
    person, car and toothbrush, COCO's last id), and a crowd region of the first category in uncompressed RLE, and
    an image without annotations. Returns {split: [per image: {"file", "objects": [(mask, category_id, iscrowd)]}]}.
    """
    rng = np.random.default_rng(seed)
    if categories is None:
        categories = dict(zip(COCO_CATEGORY_IDS, COCO_2017_CLASS_NAMES[1:]))
    listed = [{"id": cid, "name": name, "supercategory": "thing"} for cid, name in categories.items()]
    first, second, third = object_categories
    written: dict[str, list[dict]] = {}
    for split, first_id in (("train2017", 9), ("val2017", 139)):
        (root / split).mkdir(parents=True, exist_ok=True)
        images, annotations, written[split] = [], [], []
        for n, (height, width) in enumerate([(40, 60), (36, 44)]):
            image_id = first_id + n
            file_name = f"{image_id:012d}.jpg"
            Image.fromarray(_image(rng, height, width)).save(root / split / file_name)
            images.append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            objects = []
            if n == 0:
                person = np.zeros((height, width), dtype=np.uint8)
                person[2:20, 4:10] = 1
                person[14:20, 10:18] = 1
                car = np.zeros_like(person)
                car[22:34, 30:50] = 1
                brush = np.zeros_like(person)
                brush[5:9, 40:58] = 1
                crowd = np.zeros_like(person)
                crowd[26:38, 2:24] = 1
                rle = coco_mask.encode(np.asfortranarray(car))
                segmentations = [
                    [[4, 2, 10, 2, 10, 14, 18, 14, 18, 20, 4, 20]],  # the L shape, in pixel-edge coordinates
                    {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                    [[40, 5, 58, 5, 58, 9, 40, 9]],
                    _uncompressed_rle(crowd),
                ]
                objects = [(person, first, 0), (car, second, 0), (brush, third, 0), (crowd, first, 1)]
                for k, (segmentation, (mask, cid, iscrowd)) in enumerate(zip(segmentations, objects)):
                    ys, xs = np.nonzero(mask)
                    annotations.append({
                        "id": image_id * 10 + k, "image_id": image_id, "category_id": cid, "iscrowd": iscrowd,
                        "segmentation": segmentation, "area": int(mask.sum()),
                        "bbox": [int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1],
                    })  # fmt: skip
            written[split].append({"file": root / split / file_name, "objects": objects})
        (root / "annotations").mkdir(exist_ok=True)
        content = {"images": images, "annotations": annotations, "categories": listed, "info": {}, "licenses": []}
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(content))
    return written


FOLDER_CLASSES = ["background", "road", "car"]
FOLDER_PALETTE = [[0, 0, 0], [128, 64, 128], [0, 0, 142]]


def write_folder_tree(root: Path, layout: str = "subfolders", seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """A folder dataset with ``classes.yaml`` (3 classes and a palette), PNG images and index masks (0..2, 255),
    either in ``images/<split>/`` + ``masks/<split>/`` (``layout="subfolders"``) or in ``images/`` + ``masks/`` +
    ``<split>.txt`` (``layout="split_files"``). Returns {split: {stem: mask}}."""
    rng = np.random.default_rng(seed)
    (root).mkdir(parents=True, exist_ok=True)
    palette = "\n".join(f"  - {colour}" for colour in FOLDER_PALETTE)
    (root / "classes.yaml").write_text(f"classes: [{', '.join(FOLDER_CLASSES)}]\npalette:\n{palette}\n")
    written: dict[str, dict[str, np.ndarray]] = {}
    for split, stems in (("train", ["field_a", "field_b"]), ("val", ["field_c"])):
        sub = split if layout == "subfolders" else ""
        (root / "images" / sub).mkdir(parents=True, exist_ok=True)
        (root / "masks" / sub).mkdir(parents=True, exist_ok=True)
        written[split] = {}
        for index, stem in enumerate(stems):
            height, width = 40 + 8 * index, 48
            mask = _blocks(rng, height, width, np.array([0, 1, 2, 255]))
            Image.fromarray(_image(rng, height, width)).save(root / "images" / sub / f"{stem}.png")
            Image.fromarray(mask, mode="L").save(root / "masks" / sub / f"{stem}.png")
            written[split][stem] = mask
        if layout == "split_files":
            (root / f"{split}.txt").write_text("\n".join(stems) + "\n")
    return written
