"""Pascal VOC 2012: palette-PNG masks read as class indices, the SBD-augmented split, bad input, one training step."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from seglab.commands.train import train
from seglab.config.compose import compose_config
from seglab.data.datasets import VOCSegmentation
from seglab.runtime.errors import UserError

from tests.helpers import RECORD_VALIDATION, assert_miou_is_recomputed, make_cfg
from tests.helpers.dataset_trees import write_voc_tree

PERSON = 15


@pytest.fixture(scope="module")
def voc(tmp_path_factory):
    root = tmp_path_factory.mktemp("voc")
    return root, write_voc_tree(root)


def test_masks_are_the_palette_indices_with_255_kept_as_ignore(voc):
    root, written = voc
    for split in ("train", "val"):
        dataset = VOCSegmentation(root, split)
        assert [p.stem for p, _ in dataset.samples] == list(written[split])
        for index, (image_id, mask) in enumerate(written[split].items()):
            sample = dataset[index]
            assert sample["name"] == image_id and sample["image"].shape[1:] == mask.shape
            assert np.array_equal(sample["mask"].numpy(), mask)
    # The file holds palette indices: a person pixel shows VOC's person colour, and the dataset gives class 15.
    image_id, mask = next(iter(written["train"].items()))
    y, x = np.argwhere(mask == PERSON)[0]
    png = Image.open(root / "VOCdevkit/VOC2012/SegmentationClass" / f"{image_id}.png")
    assert png.mode == "P" and png.convert("RGB").getpixel((int(x), int(y))) == (192, 128, 128)
    assert VOCSegmentation(root / "VOCdevkit" / "VOC2012", "val")[0]["mask"].shape == next(iter(written["val"].values())).shape
    assert list(compose_config("train", ["data=voc"]).data.class_names) == list(VOCSegmentation.class_names)


def test_train_aug_reads_sbd_masks_and_refuses_val_images(voc, tmp_path):
    root, written = voc
    dataset = VOCSegmentation(root, "train_aug")
    assert all("SegmentationClassAug" in str(label) for _, label in dataset.samples)
    for index, mask in enumerate(written["train_aug"].values()):
        assert np.array_equal(dataset[index]["mask"].numpy(), mask)
    leaky = tmp_path / "leaky"
    write_voc_tree(leaky)
    aug_list = leaky / "VOCdevkit/VOC2012/ImageSets/Segmentation/train_aug.txt"
    aug_list.write_text(aug_list.read_text() + "2007_000033\n")
    with pytest.raises(UserError, match="train_aug.txt lists 1 images of the val split"):
        VOCSegmentation(leaky, "train_aug")
    plain = tmp_path / "plain"
    write_voc_tree(plain, augmented=False)
    with pytest.raises(UserError, match="train_aug.txt is missing \\(the SBD-augmented set is not installed\\)"):
        VOCSegmentation(plain, "train_aug")


def test_bad_input_gives_one_clear_message(tmp_path):
    with pytest.raises(UserError, match="data.root is not set for Pascal VOC"):
        VOCSegmentation(None)
    with pytest.raises(UserError, match=f"{tmp_path / 'JPEGImages'} is missing"):
        VOCSegmentation(tmp_path)
    root = tmp_path / "voc"
    write_voc_tree(root, augmented=False)
    voc = root / "VOCdevkit" / "VOC2012"
    with pytest.raises(UserError, match=f"split file {voc}/ImageSets/Segmentation/test.txt is missing"):
        VOCSegmentation(root, "test")
    (voc / "ImageSets/Segmentation/empty.txt").write_text("\n")
    with pytest.raises(UserError, match="'empty' split is empty"):
        VOCSegmentation(root, "empty")
    (voc / "SegmentationClass/2007_000039.png").unlink()
    with pytest.raises(UserError, match="2007_000039.jpg has no label map: .*SegmentationClass/2007_000039.png is missing"):
        VOCSegmentation(root, "train")
    (voc / "JPEGImages/2008_000002.jpg").unlink()
    with pytest.raises(UserError, match="image .*2008_000002.jpg \\(listed in val.txt\\) is missing"):
        VOCSegmentation(root, "val")


def test_truncated_images_and_unknown_values_are_named(tmp_path):
    root = tmp_path / "voc"
    write_voc_tree(root, augmented=False)
    voc = root / "VOCdevkit" / "VOC2012"
    jpeg = voc / "JPEGImages/2007_000032.jpg"
    jpeg.write_bytes(jpeg.read_bytes()[: len(jpeg.read_bytes()) // 2])
    with pytest.raises(UserError, match=f"cannot read image {jpeg}"):
        VOCSegmentation(root, "train")[0]
    png_path = voc / "SegmentationClass/2007_000039.png"
    png = Image.open(png_path)
    values = np.asarray(png).copy()
    values[0, :4] = 30
    out = Image.fromarray(values, mode="P")
    out.putpalette(png.getpalette())
    out.save(png_path)
    with pytest.raises(UserError, match=r"2007_000039.png has label values \[30\].*expected 0..20 or 255"):
        VOCSegmentation(root, "train")[1]


def test_trains_one_step_on_the_tree(voc, tmp_path):
    root, _ = voc
    cfg = make_cfg(
        tmp_path, "data=voc", f"data.root={root}", "model/backbone=resnet18", "model.backbone.weights=null",
        "data.crop_size=[32,32]", "data.batch_size=2", "data.num_workers=0", "debug=fdr", RECORD_VALIDATION,
    )  # fmt: skip
    metrics = train(cfg)
    assert_miou_is_recomputed(metrics)
    assert "val/IoU/tvmonitor" in metrics
