"""Folder dataset: classes.yaml, split sub-folders or split files, index / palette / RGB masks, bad input, training."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from seglab.commands.train import train
from seglab.config.compose import compose_config
from seglab.data.datasets import FolderDataset
from seglab.runtime.errors import UserError

from tests.helpers import RECORD_VALIDATION, assert_miou_is_recomputed, assert_one_line_error, make_cfg, run_in_process
from tests.helpers.dataset_trees import FOLDER_CLASSES, FOLDER_PALETTE, write_folder_tree


@pytest.mark.parametrize("layout", ["subfolders", "split_files"])
def test_masks_are_class_indices_in_either_layout(tmp_path, layout):
    written = write_folder_tree(tmp_path, layout)
    for split in ("train", "val"):
        dataset = FolderDataset(tmp_path, split)
        assert dataset.class_names == FOLDER_CLASSES and dataset.palette == [tuple(c) for c in FOLDER_PALETTE]
        assert [dataset.sample_name(i) for i in range(len(dataset))] == list(written[split])
        for index, mask in enumerate(written[split].values()):
            assert np.array_equal(dataset[index]["mask"].numpy(), mask)


def test_palette_pngs_and_rgb_masks_give_the_same_classes(tmp_path):
    written = write_folder_tree(tmp_path)
    stem, mask = next(iter(written["val"].items()))
    path = tmp_path / "masks" / "val" / f"{stem}.png"
    palette_png = Image.fromarray(mask, mode="P")
    palette_png.putpalette([v for colour in FOLDER_PALETTE + [[255, 255, 255]] * 253 for v in colour])
    palette_png.save(path)
    assert np.array_equal(FolderDataset(tmp_path, "val")[0]["mask"].numpy(), mask)
    colours = np.array(FOLDER_PALETTE + [[255, 255, 255]] * 253, dtype=np.uint8)[mask]  # 255 (ignore) is white
    Image.fromarray(colours).save(path)
    with pytest.raises(UserError, match=r"has label values \[rgb\(255, 255, 255\)\]"):
        FolderDataset(tmp_path, "val")[0]
    with pytest.warns(UserWarning):
        assert np.array_equal(FolderDataset(tmp_path, "val", strict_labels=False)[0]["mask"].numpy(), mask)


def test_config_reads_the_class_names_from_classes_yaml(tmp_path):
    write_folder_tree(tmp_path)
    cfg = compose_config("train", ["data=folder", f"data.root={tmp_path}"])
    assert list(cfg.data.class_names) == FOLDER_CLASSES and cfg.data.num_classes == 3 == cfg.model.num_classes


def test_bad_input_gives_one_clear_message(tmp_path):
    with pytest.raises(UserError, match="data.root is not set for the folder dataset"):
        FolderDataset(None)
    with pytest.raises(UserError, match=f"{tmp_path}/classes.yaml is missing: the folder dataset reads its class names"):
        FolderDataset(tmp_path)
    written = write_folder_tree(tmp_path)
    with pytest.raises(UserError, match=rf"split 'test' not found: neither {tmp_path}/images/test nor {tmp_path}/test.txt"):
        FolderDataset(tmp_path, "test")
    (tmp_path / "classes.yaml").write_text("classes: [a, b]\npalette: [[0, 0, 0]]\n")
    with pytest.raises(UserError, match="'palette' must give one \\[r, g, b\\] \\(0..255\\) per class, 2 in all"):
        FolderDataset(tmp_path)
    (tmp_path / "classes.yaml").write_text("names: [a, b]\n")
    with pytest.raises(UserError, match="must list the class names under 'classes'"):
        FolderDataset(tmp_path)
    (tmp_path / "classes.yaml").write_text("classes: [background, road]\n")
    stem, mask = next(iter(written["train"].items()))
    with pytest.raises(UserError, match=rf"{stem}.png has label values \[2\] .*expected 0..1 or 255"):
        FolderDataset(tmp_path, "train")[0]
    (tmp_path / "images" / "train" / f"{stem}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(UserError, match=f"cannot read image .*{stem}.png"):
        FolderDataset(tmp_path, "train")[0]
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "images" / "train" / "stray.jpg")
    with pytest.raises(UserError, match=r"image .*stray.jpg has no label map: .*masks/train/stray.png is missing"):
        FolderDataset(tmp_path, "train")
    (tmp_path / "images" / "train" / "stray.jpg").rename(tmp_path / "images" / "train" / f"{stem}.jpg")
    with pytest.raises(UserError, match=f"{stem}.jpg and .*{stem}.png have the same stem"):
        FolderDataset(tmp_path, "train")
    for image in (tmp_path / "images" / "train").iterdir():
        image.unlink()
    with pytest.raises(UserError, match=r"label map .*masks/train/field_a.png has no image: .*images/train/field_a.<jpg"):
        FolderDataset(tmp_path, "train")
    for label in (tmp_path / "masks" / "train").iterdir():
        label.unlink()
    with pytest.raises(UserError, match="'train' split is empty"):
        FolderDataset(tmp_path, "train")


def test_decompression_bombs_are_refused(tmp_path, monkeypatch):
    write_folder_tree(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)  # the 40x48 images count as bombs above 2 x 500 pixels
    with pytest.raises(UserError, match="cannot read image .*field_c.png: .*decompression bomb"):
        FolderDataset(tmp_path, "val")[0]


def test_trains_one_step_on_the_tree(tmp_path):
    write_folder_tree(tmp_path / "data")
    cfg = make_cfg(
        tmp_path / "run", "data=folder", f"data.root={tmp_path / 'data'}", "model/backbone=resnet18",
        "model.backbone.weights=null", "data.crop_size=[32,32]", "data.batch_size=2", "data.num_workers=0", "debug=fdr", RECORD_VALIDATION,
    )  # fmt: skip
    metrics = train(cfg)
    assert_miou_is_recomputed(metrics)
    assert "val/IoU/car" in metrics


def test_missing_root_exits_with_one_clear_message(tmp_path):
    result = run_in_process("train.py", "data=folder", f"hydra.run.dir={tmp_path / 'run'}")
    assert_one_line_error(result, "data.root is not set for the folder dataset")
