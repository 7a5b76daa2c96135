"""predict.py: arbitrary images of any size, every mode, unreadable files reported while the others run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from seglab.commands.predict import find_inputs, predict
from seglab.data.datasets import SyntheticShapes
from seglab.runtime.errors import UserError

from tests.helpers import make_cfg, run_in_process, run_script


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Synthetic images saved as files of several sizes and formats, and one file that is not an image."""
    folder = tmp_path_factory.mktemp("photos")
    dataset = SyntheticShapes("test", lengths={"test": 3}, image_size=(48, 80))
    Image.fromarray(dataset.generate(0)[0]).save(folder / "wide.png")
    Image.fromarray(dataset.generate(1)[0]).resize((37, 53)).save(folder / "odd.jpg")
    Image.fromarray(dataset.generate(2)[0]).convert("L").save(folder / "grey.png")
    (folder / "broken.png").write_bytes(b"not a png at all")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_inputs_are_a_file_a_folder_or_a_glob(photos):
    assert find_inputs(str(photos / "wide.png")) == [photos / "wide.png"]
    assert [p.name for p in find_inputs(str(photos))] == ["broken.png", "grey.png", "odd.jpg", "wide.png"]
    assert [p.name for p in find_inputs(str(photos / "*.jpg"))] == ["odd.jpg"]
    with pytest.raises(UserError, match="names no image file"):
        find_inputs(str(photos / "*.tif"))


@pytest.mark.parametrize(
    "mode", [["predict.mode=whole"], ["predict.mode=slide"], ["inference=tta", "inference.scales=[0.75,1.0]"]],
    ids=["whole", "slide", "tta"],
)
def test_every_mode_segments_images_of_any_size(trained_run, photos, tmp_path, mode):
    run_dir, _ = trained_run
    cfg = make_cfg(
        tmp_path,
        f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
        f"input='{photos}/*[edy].*'",  # wide, odd, grey: not the broken file (quoted for Hydra)
        f"output_dir={tmp_path / 'out'}",
        *mode,
        config_name="predict",
    )
    predict(cfg)
    for name, (height, width) in {"wide": (48, 80), "odd": (53, 37), "grey": (48, 80)}.items():
        mask = np.asarray(Image.open(tmp_path / "out" / f"{name}_mask.png"))
        assert mask.shape == (height, width) and mask.max() < 5
        colour_width, colour_height = Image.open(tmp_path / "out" / f"{name}_color.png").size
        assert colour_width == max(2 * width, 256) and colour_height > height  # mask | overlay above the class legend


def test_unreadable_file_is_named_and_the_others_still_run(trained_run, photos, tmp_path):
    run_dir, _ = trained_run
    result = run_script(
        "predict.py",
        f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
        f"input={photos}",
        f"output_dir={tmp_path / 'out'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert result.returncode != 0
    assert "broken.png" in result.stderr and "1 of 4 inputs could not be read" in result.stderr
    assert "Traceback" not in result.stderr
    assert "segmenting" in result.stderr  # the progress bar
    assert f"Prediction finished: {tmp_path / 'out'}\n  outputs     6 files for 3 images (*_mask.png, *_color.png)\n" in result.stdout
    assert f"  config      {tmp_path / 'run' / 'resolved_config.yaml'}\n  logs        {tmp_path / 'run' / 'predict.log'}" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").glob("*_mask.png")) == ["grey_mask.png", "odd_mask.png", "wide_mask.png"]


def test_predict_overrides_a_key_of_the_checkpoints_preset_without_plus(panoptic_run, photos, tmp_path):
    checkpoint = panoptic_run[0] / "checkpoints" / "best.ckpt"
    result = run_in_process(
        "predict.py", f"ckpt_path={checkpoint}", f"input={photos / 'wide.png'}", f"output_dir={tmp_path / 'out'}",
        "model.center_threshold=0.0", "model.top_k=2", f"hydra.run.dir={tmp_path}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rebuilt = OmegaConf.load(tmp_path / "resolved_config.yaml")
    assert rebuilt.model.center_threshold == 0.0 and rebuilt.model.top_k == 2
    assert len(json.loads((tmp_path / "out" / "wide_instances.json").read_text())["instances"]) <= 2
