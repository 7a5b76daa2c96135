"""The dense CRF as the postprocess group and the boundary metrics of semantic validation, eval.py and predict.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import seglab.inference.crf as crf_module
from seglab.checkpointing.restore import load_trained_model, training_config
from seglab.commands.evaluate import EVAL_ONLY_KEYS, evaluate, save_trimap_curve
from seglab.commands.export import export_model
from seglab.commands.predict import predict
from seglab.config.builders import build_datamodule, build_model
from seglab.config.compose import CONFIG_DIR, compose_config
from seglab.config.validation import check_config
from seglab.data.datasets import SyntheticShapes
from seglab.inference.crf import DenseCRF
from seglab.metrics import SegmentationMetrics
from seglab.metrics.boundary import BoundaryIoU, TrimapMIoU
from seglab.runtime.errors import UserError
from seglab.tracking.metrics_file import format_metrics_table
from seglab.viz.trimap_curve import curve_prefixes, trimap_curve_image, trimap_curves
from seglab.viz.validation_media import ValidationMedia

from tests.helpers import QUICK, make_cfg

SEMANTIC_PRESETS = sorted(
    p.stem for p in (Path(CONFIG_DIR) / "model").glob("*.yaml") if p.stem not in ("maskrcnn", "panoptic_deeplab")
)
WIDTHS = ["1", "2", "5", "10", "20", "40"]
# Fewer mean-field steps keep the tests short; the defaults are checked on the config.
FAST_CRF = ["postprocess=densecrf", "postprocess.iterations=3"]


def test_every_semantic_preset_takes_the_crf_with_deeplab_v1_defaults():
    assert len(SEMANTIC_PRESETS) == 8
    for preset in SEMANTIC_PRESETS:
        cfg = compose_config("train", [f"model={preset}", "postprocess=densecrf"])
        crf = DenseCRF(**{k: v for k, v in cfg.model.postprocess.items() if k != "_target_"})
        assert crf == DenseCRF(), preset  # iterations 10, w1 4, theta_alpha 121, theta_beta 5, w2 3, theta_gamma 3
        assert (crf.iterations, crf.w1, crf.theta_alpha, crf.theta_beta, crf.w2, crf.theta_gamma) == (10, 4, 121, 5, 3, 3)
        assert list(cfg.model.trimap_widths) == [1, 2, 5, 10, 20, 40] and cfg.model.boundary_dilation_ratio == 0.02
    assert compose_config("train", []).model.postprocess is None  # no post-processing by default


@pytest.mark.parametrize("preset", ["maskrcnn", "panoptic_deeplab"])
def test_instance_models_refuse_the_crf_in_one_line(preset):
    cfg = compose_config("train", [f"model={preset}", "postprocess=densecrf"])
    with pytest.raises(UserError, match="predicts instances: drop the postprocess") as err:
        build_model(cfg, build_datamodule(cfg))
    assert "\n" not in str(err.value)


def test_crf_needs_the_normalize_transform_and_its_backend(monkeypatch):
    cfg = compose_config("train", [*QUICK, "postprocess=densecrf", "data.val_transforms=null"])
    with pytest.raises(UserError, match="data.val_transforms has no seglab.data.transforms.Normalize"):
        build_model(cfg, build_datamodule(cfg))
    monkeypatch.setattr(crf_module, "_import_pydensecrf", _missing_pydensecrf)
    cfg = compose_config("train", [*QUICK, "postprocess=densecrf", "postprocess.method=pydensecrf"])
    with pytest.raises(UserError, match=r"pip install 'seglab\[crf\]'"):
        build_model(cfg, build_datamodule(cfg))


def _missing_pydensecrf():
    raise UserError("CRF method 'pydensecrf' needs the pydensecrf2 package, which is not installed: pip install 'seglab[crf]'")


@pytest.mark.parametrize(
    "overrides, problem",
    [
        (["metrics.trimap_widths=[0,5]"], "metrics.trimap_widths=[0, 5]: must be a non-empty list of integers >= 1"),
        (["metrics.trimap_widths=5"], "metrics.trimap_widths=5: must be"),
        (["metrics.boundary_dilation_ratio=1.0"], "metrics.boundary_dilation_ratio=1.0: must be a number in (0, 1)"),
        ([*FAST_CRF, "postprocess.iterations=0"], "postprocess.iterations=0: must be an integer >= 1"),
        ([*FAST_CRF, "postprocess.theta_beta=0"], "postprocess.theta_beta=0: must be a number > 0"),
        ([*FAST_CRF, "postprocess.w1=-1"], "postprocess.w1=-1: must be a number >= 0"),
        ([*FAST_CRF, "postprocess.method=fast"], "postprocess.method=fast: must be one of auto, exact, permutohedral"),
    ],
)
def test_bad_metric_and_crf_options_name_the_key(overrides, problem):
    with pytest.raises(UserError, match=problem.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        check_config(compose_config("train", overrides))


def test_metrics_options_turn_the_boundary_metrics_off_and_one_width_is_allowed():
    cfg = compose_config("train", [*QUICK, "metrics.trimap_widths=[]", "metrics.boundary_dilation_ratio=null"])
    check_config(cfg)
    model = build_model(cfg, build_datamodule(cfg))
    assert not model.val_boundary and not model.test_boundary and model.val_network is None
    cfg = compose_config("train", [*QUICK, "metrics.trimap_widths=[3]", *FAST_CRF])
    model = build_model(cfg, build_datamodule(cfg))
    assert model.val_boundary["trimap"].widths == [3] and "boundary" in model.val_boundary
    assert set(model.val_network) == {"trimap", "boundary", "confusion"}


def test_validation_logs_the_boundary_metrics_of_every_width(trained_run):
    _, metrics = trained_run
    for width in WIDTHS:
        assert 0.0 < metrics[f"val/trimap_mIoU/{width}"] < 1.0
    assert 0.0 < metrics["val/boundary_mIoU"] < 1.0
    assert {f"val/boundary_IoU/{c}" for c in ("background", "disk", "square", "triangle", "cross")} <= set(metrics)
    # Narrow bands are the hard pixels: the 1-pixel band scores below the whole image (a trained model).
    assert metrics["val/trimap_mIoU/1"] < metrics["val/mIoU"]
    assert not any(key.startswith("val/network/") for key in metrics)  # no post-processing, no second score


@pytest.mark.parametrize(
    "mode",
    [
        ["inference=whole"],
        ["inference=slide", "inference.crop_size=[24,40]", "inference.stride=[16,16]"],
        ["inference=tta", "inference.scales=[0.75,1.0]", "inference.flip=true"],
    ],
    ids=["whole", "slide", "tta"],
)
def test_the_crf_refines_the_softmax_of_every_inference_mode(mode):
    cfg = compose_config("train", [*QUICK, *FAST_CRF, *mode])
    datamodule = build_datamodule(cfg)
    datamodule.setup("validate")
    model = build_model(cfg, datamodule).eval()
    batch = next(iter(datamodule.val_dataloader()))
    with torch.no_grad():
        logits, scores = model.class_scores(batch["image"])
        expected_logits = model.inference(model.net, batch["image"])
    colours = torch.stack([torch.from_numpy(SyntheticShapes("val", lengths={"val": 8}, image_size=(32, 32)).generate(i)[0])
                           for i in range(8)]).permute(0, 3, 1, 2)  # fmt: skip
    assert torch.equal(logits, expected_logits) and scores.shape == logits.shape
    assert torch.allclose(scores, DenseCRF(iterations=3)(expected_logits.softmax(1), colours), atol=1e-6)
    assert not torch.allclose(scores, expected_logits.softmax(1), atol=1e-3)


def test_eval_with_the_crf_scores_the_refined_predictions_and_the_networks_own(trained_run, tmp_path):
    run_dir, train_metrics = trained_run
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    overrides = [f"ckpt_path={ckpt}", *FAST_CRF, "export.format=png"]
    metrics = evaluate(make_cfg(tmp_path, *overrides, config_name="eval"))

    # The exported (scored) predictions are the CRF of the mode's softmax, the colours the un-normalised images.
    train_cfg = training_config(ckpt, overrides[1:], EVAL_ONLY_KEYS)
    datamodule, model = load_trained_model(ckpt, train_cfg)
    crf, normalize = DenseCRF(iterations=3), model.input_normalize
    dataset = SyntheticShapes("val", lengths={"val": 32})
    refined = SegmentationMetrics(5)
    trimap, boundary = TrimapMIoU(5), BoundaryIoU(5)
    changed = 0
    for index in (0, 17, 31):
        image, target, _ = dataset.generate(index)
        written = torch.from_numpy(np.asarray(Image.open(tmp_path / "predictions" / f"val_{index:06d}.png")).astype(np.int64))
        inputs = datamodule.val_transforms({"image": torch.from_numpy(image).permute(2, 0, 1)})["image"][None]
        with torch.no_grad():
            logits = model.inference(model.net, inputs)
        expected = crf(logits.softmax(1), normalize.denormalize(inputs)).argmax(1)[0]
        assert torch.equal(normalize.denormalize(inputs)[0], torch.from_numpy(image).permute(2, 0, 1))
        assert (written == expected).float().mean() > 0.999  # float summation order: a tie may flip
        changed += int((expected != logits.argmax(1)[0]).sum())
    assert changed > 0  # the CRF did something

    # The scores are those of the written predictions, over the whole split; network/ those without the CRF.
    for index in range(32):
        image, target, _ = dataset.generate(index)
        written = torch.from_numpy(np.asarray(Image.open(tmp_path / "predictions" / f"val_{index:06d}.png")).astype(np.int64))
        target = torch.from_numpy(target).long()
        refined.update(written[None], target[None])
        trimap.update(written[None], target[None])
        boundary.update(written[None], target[None])
    assert metrics["mIoU"] == pytest.approx(refined.compute()["mIoU"].item(), abs=1e-6)
    for width, value in trimap.compute().items():
        assert metrics["trimap_mIoU"][width.split("/")[1]] == pytest.approx(value.item(), abs=1e-6)
    assert metrics["boundary_mIoU"] == pytest.approx(boundary.compute()["boundary_mIoU"].item(), abs=1e-6)
    # The network's own scores are training's validation scores of the checkpoint.
    assert metrics["network"]["mIoU"] == pytest.approx(train_metrics["val/mIoU"], abs=1e-6)
    for width in WIDTHS:
        assert metrics["network"][f"trimap_mIoU/{width}"] == pytest.approx(train_metrics[f"val/trimap_mIoU/{width}"], abs=1e-6)
    assert metrics["network"]["boundary_mIoU"] == pytest.approx(train_metrics["val/boundary_mIoU"], abs=1e-6)
    assert metrics["mIoU"] != metrics["network"]["mIoU"]
    written = json.loads((tmp_path / "metrics.json").read_text())
    picture = Image.open(written["trimap_curve"])
    assert Path(written["trimap_curve"]) == (tmp_path / "trimap_curve.png").resolve() and picture.mode == "RGB"


def test_eval_draws_the_curves_it_has_scores_for(tmp_path):
    cfg = compose_config("train", [])
    assert save_trimap_curve({"val/mIoU": 0.5}, "val", cfg, tmp_path / "a.png", "") is None  # trimap_widths=[]
    assert not (tmp_path / "a.png").exists()
    logged = {"test/trimap_mIoU/1": 0.25, "test/trimap_mIoU/5": 0.5, "test/network/trimap_mIoU/1": 0.125}
    assert save_trimap_curve(logged, "test", cfg, tmp_path / "b.png", "") == tmp_path / "b.png"
    assert Image.open(tmp_path / "b.png").mode == "RGB"


def test_predict_with_the_crf_writes_the_refined_classes(trained_run, tmp_path):
    run_dir, _ = trained_run
    ckpt = run_dir / "checkpoints" / "best.ckpt"
    image = SyntheticShapes("test", lengths={"test": 1}, image_size=(40, 56)).generate(0)[0]
    Image.fromarray(image).save(tmp_path / "photo.png")
    predict(make_cfg(tmp_path, f"ckpt_path={ckpt}", f"input={tmp_path / 'photo.png'}", f"output_dir={tmp_path / 'out'}",
                     *FAST_CRF, config_name="predict"))  # fmt: skip
    written = np.asarray(Image.open(tmp_path / "out" / "photo_mask.png"))
    datamodule, model = load_trained_model(ckpt, training_config(ckpt, FAST_CRF, EVAL_ONLY_KEYS))
    inputs = datamodule.val_transforms({"image": torch.from_numpy(image).permute(2, 0, 1)})["image"][None]
    with torch.no_grad():
        logits = model.inference(model.net, inputs)
    expected = DenseCRF(iterations=3)(logits.softmax(1), torch.from_numpy(image).permute(2, 0, 1)[None]).argmax(1)[0]
    assert (torch.from_numpy(written.astype(np.int64)) == expected).float().mean() > 0.999


def test_export_refuses_the_crf_rather_than_dropping_it(trained_run, tmp_path):
    run_dir, _ = trained_run
    cfg = make_cfg(tmp_path, f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}", *FAST_CRF, config_name="export")
    with pytest.raises(UserError, match="the exported model is the network alone"):
        export_model(cfg)


def test_validation_media_log_the_trimap_curve_beside_the_networks_own():
    cfg = compose_config("train", [*QUICK, *FAST_CRF, "metrics.trimap_widths=[1,4]"])
    datamodule = build_datamodule(cfg)
    datamodule.setup("validate")
    model = build_model(cfg, datamodule).eval()
    batch = next(iter(datamodule.val_dataloader()))
    with torch.no_grad():
        model.validation_step(batch, 0)
    logged = []
    sink = SimpleNamespace(log_image=lambda key, image, step: logged.append((key, image, step)),
                           log_table=lambda *args: None)  # fmt: skip
    media = ValidationMedia(num_images=0, class_table=False, confusion_matrix=False)
    media.sinks = [sink]
    trainer = SimpleNamespace(sanity_checking=False, is_global_zero=True, global_step=7, current_epoch=0, state=SimpleNamespace(fn="fit"))
    media.on_validation_epoch_end(trainer, model)
    assert [(key, step) for key, _, step in logged] == [("val/trimap_curve", 7)]
    assert logged[0][1].ndim == 3 and logged[0][1].dtype == np.uint8
    curves = ValidationMedia._trimap_curves(model)
    assert set(curves) == {"network", "network + dense CRF"} and all(set(c) == {1, 4} for c in curves.values())
    assert curves["network + dense CRF"][4] == pytest.approx(model.val_boundary["trimap"].compute()["trimap_mIoU/4"].item())
    quiet = ValidationMedia(num_images=0, class_table=False, confusion_matrix=False, trimap_curve=False)
    quiet.sinks = [sink]
    quiet.on_validation_epoch_end(trainer, model)
    assert len(logged) == 1  # callbacks.validation_media.trimap_curve=false: no curve


def test_trimap_curves_are_read_from_logged_scores_and_drawn():
    scores = {"val/mIoU": 0.8, "val/trimap_mIoU/10": 0.7, "val/trimap_mIoU/2": 0.5, "val/network/trimap_mIoU/2": 0.4,
              "val/network/trimap_mIoU/10": float("nan"), "val/boundary_mIoU": 0.3}  # fmt: skip
    curves = trimap_curves(scores, curve_prefixes("val/", postprocessed=True))
    assert curves == {"network": {2: 0.4, 10: pytest.approx(float("nan"), nan_ok=True)}, "network + dense CRF": {2: 0.5, 10: 0.7}}
    assert list(curves["network + dense CRF"]) == [2, 10]  # by width, not as logged
    assert trimap_curves(scores, curve_prefixes("val/", postprocessed=False)) == {"network": {2: 0.5, 10: 0.7}}
    assert trimap_curves({"val/mIoU": 0.8}, curve_prefixes("val/", False)) == {}
    for drawn in (curves, {"network": {1: float("nan")}}, {}):  # a width without a score is left out
        picture = trimap_curve_image(drawn)
        assert picture.shape[2] == 3 and picture.dtype == np.uint8


def test_metrics_table_lists_the_trimap_by_band_width():
    table = format_metrics_table(
        {"val/mIoU": 0.5, "val/IoU/disk": 0.25, "val/trimap_mIoU/1": 0.125, "val/trimap_mIoU/10": 0.375,
         "val/network/trimap_mIoU/1": 0.0625, "val/network/mIoU": 0.4375, "val/boundary_IoU/disk": 0.75},
        "metric",
    )  # fmt: skip
    lines = table.splitlines()
    assert any(line.split() == ["val/network/mIoU", "0.4375"] for line in lines)
    assert any(line.split() == ["disk", "0.2500", "0.7500"] for line in lines)
    band = lines.index(next(line for line in lines if line.startswith("band width (px)")))
    assert lines[band].split()[3:] == ["trimap_mIoU", "network/trimap_mIoU"]
    assert lines[band + 2].split() == ["1", "0.1250", "0.0625"]
    assert lines[band + 3].split() == ["10", "0.3750", "n/a"]
