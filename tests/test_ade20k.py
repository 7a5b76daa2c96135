"""ADE20K: label 0 ("other") ignored, 1..150 shifted to 0..149, the published layout, bad input, one training step."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from seglab.commands.train import train
from seglab.config.compose import compose_config
from seglab.data.datasets import ADE20KDataset
from seglab.runtime.errors import UserError

from tests.helpers import RECORD_VALIDATION, assert_miou_is_recomputed, make_cfg
from tests.helpers.dataset_trees import write_ade20k_tree


@pytest.fixture(scope="module")
def ade(tmp_path_factory):
    root = tmp_path_factory.mktemp("ade")
    return root, write_ade20k_tree(root)


def test_zero_is_ignored_and_the_rest_shift_down_by_one(ade):
    root, written = ade
    for split in ("training", "validation"):
        dataset = ADE20KDataset(root, split)
        assert [dataset.sample_name(i) for i in range(len(dataset))] == list(written[split])
        for index, raw in enumerate(written[split].values()):
            mask = dataset[index]["mask"].numpy()
            assert (mask[raw == 0] == 255).all()
            assert np.array_equal(mask[raw > 0], raw[raw > 0] - 1)
    assert ADE20KDataset.class_names[0] == "wall" and ADE20KDataset.class_names[149] == "flag"
    assert list(compose_config("train", ["data=ade20k"]).data.class_names) == list(ADE20KDataset.class_names)
    assert len(ADE20KDataset(root / "ADEChallengeData2016", "validation")) == 2


def test_bad_input_gives_one_clear_message(tmp_path):
    with pytest.raises(UserError, match=f"data.root={tmp_path / 'nowhere'} does not exist"):
        ADE20KDataset(tmp_path / "nowhere")
    root = tmp_path / "ade"
    written = write_ade20k_tree(root)
    base = root / "ADEChallengeData2016"
    with pytest.raises(UserError, match=f"{base / 'images' / 'testing'} is missing"):
        ADE20KDataset(root, "testing")
    (base / "images" / "empty").mkdir()
    (base / "annotations" / "empty").mkdir()
    with pytest.raises(UserError, match="'empty' split is empty"):
        ADE20KDataset(root, "empty")
    stem, raw = next(iter(written["validation"].items()))
    Image.fromarray(raw[:-4], mode="L").save(base / "annotations/validation" / f"{stem}.png")
    with pytest.raises(UserError, match=rf"image .*{stem}.jpg is {raw.shape[1]}x{raw.shape[0]} but its label map .*{stem}.png is {raw.shape[1]}x{raw.shape[0] - 4}"):
        ADE20KDataset(root, "validation")[0]
    bad = raw.copy()
    bad[0, 0], bad[1, 1] = 151, 200
    Image.fromarray(bad, mode="L").save(base / "annotations/validation" / f"{stem}.png")
    with pytest.raises(UserError, match=rf"{stem}.png has label values \[151, 200\].*expected 0 \(other, ignored\) or 1..150"):
        ADE20KDataset(root, "validation")[0]
    lenient = ADE20KDataset(root, "validation", strict_labels=False)
    with pytest.warns(UserWarning, match="data.strict_labels=false maps them to 255"):
        assert lenient[0]["mask"][1, 1] == 255
    (base / "images/validation" / f"{stem}.jpg").unlink()
    with pytest.raises(UserError, match=f"label map .*{stem}.png has no image: .*{stem}.jpg is missing"):
        ADE20KDataset(root, "validation")


def test_trains_one_step_on_the_tree(ade, tmp_path):
    root, _ = ade
    cfg = make_cfg(
        tmp_path, "data=ade20k", f"data.root={root}", "model/backbone=resnet18", "model.backbone.weights=null",
        "data.crop_size=[32,32]", "data.batch_size=2", "data.num_workers=0", "debug=fdr", RECORD_VALIDATION,
    )  # fmt: skip
    metrics = train(cfg)
    assert_miou_is_recomputed(metrics)
    assert "val/IoU/flag" in metrics
