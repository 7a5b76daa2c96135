"""Published recipes (conf/experiment/*.yaml): each composes, builds and trains one step on a tiny tree of its
dataset's real layout; their iteration-based schedule runs across epochs and the poly schedule spans it."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate

from seglab.commands.train import train
from seglab.config.builders import build_datamodule, build_model, build_trainer
from seglab.config.compose import compose_config
from seglab.runtime.errors import UserError

from tests.helpers import RECORD_VALIDATION, REPO, SMALL_DETECTOR, TINY, assert_miou_is_recomputed, make_cfg
from tests.helpers.cityscapes_tree import write_cityscapes_tree
from tests.helpers.dataset_trees import write_ade20k_tree, write_voc_tree

# Every recipe, found by glob: a new conf/experiment/*.yaml is covered without editing this file.
# The published recipes and the smoke run; not the first run (quickstart) or a preset's dataset-free paper setting.
RECIPES = sorted(
    path.stem for path in (REPO / "conf" / "experiment").glob("*.yaml") if path.stem not in ("quickstart", "panoptic_deeplab")
)
TREE_WRITERS = {"cityscapes": write_cityscapes_tree, "voc": write_voc_tree, "ade20k": write_ade20k_tree}
# One CPU process, a tiny crop, ResNet-18 with random weights: what a recipe needs from the machine, scaled down
# (the recipe's own backbone is built in test_semantic_recipe_builds_the_published_model).
TINY_RUN = [
    "model/backbone=resnet18",
    "data.crop_size=[64,64]",
    "data.batch_size=2",
    "data.num_workers=0",
    "data.backbone_weights=null",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "++trainer.strategy=auto",
    "++trainer.sync_batchnorm=false",
    "++trainer.limit_val_batches=1",
    "trainer.num_sanity_val_steps=0",
    "callbacks=none",
    "++trainer.enable_checkpointing=false",
    "logger=csv",
]


def data_preset(recipe: str) -> str:
    return compose_config("train", [f"experiment={recipe}"], return_hydra_config=True).hydra.runtime.choices.data


@pytest.fixture(scope="module")
def dataset_roots(tmp_path_factory) -> dict[str, Path]:
    """One tiny tree per dataset the recipes use, in its published layout."""
    roots = {}
    for preset in {data_preset(recipe) for recipe in RECIPES} & TREE_WRITERS.keys():
        roots[preset] = tmp_path_factory.mktemp(preset)
        TREE_WRITERS[preset](roots[preset])
    return roots


def tiny_overrides(recipe: str, roots: dict[str, Path], max_steps: int = 1) -> list[str]:
    root = roots.get(data_preset(recipe))
    model = compose_config("train", [f"experiment={recipe}"]).model._target_
    # Mask R-CNN recipes resize to a 1024 short side and sample hundreds of RoIs: keep the tiny size and few RoIs.
    detector = ["model.min_size=null", "model.max_size=null", *SMALL_DETECTOR] if model.endswith("MaskRCNNModule") else []
    return [
        f"experiment={recipe}",
        *TINY_RUN,
        *detector,
        *([f"data.root={root}"] if root else []),
        f"trainer.max_steps={max_steps}",
        f"++trainer.val_check_interval={max_steps}",
    ]


def test_recipes_are_found():
    assert {"smoke", "cityscapes_deeplabv3plus_r101", "voc_aug_deeplabv3plus_r101", "ade20k_deeplabv3plus_r50"} <= set(
        RECIPES
    )


def is_semantic(recipe: str) -> bool:
    return compose_config("train", [f"experiment={recipe}"]).model._target_.endswith("SemanticSegmentationModule")


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r != "smoke"])
def test_recipe_is_iteration_based_with_syncbn(recipe):
    cfg = compose_config("train", [f"experiment={recipe}"])
    assert cfg.experiment_name == recipe
    assert cfg.trainer.max_epochs is None and cfg.trainer.max_steps > 0
    assert cfg.trainer.check_val_every_n_epoch is None and 0 < cfg.trainer.val_check_interval <= cfg.trainer.max_steps
    assert cfg.trainer.devices > 1 and cfg.trainer.strategy == "ddp" and cfg.trainer.sync_batchnorm is True


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r != "smoke" and is_semantic(r)])
def test_semantic_recipe_builds_the_published_model(recipe):
    """The recipe's own backbone (random weights) at output stride 8 with the auxiliary head weighted 0.4, and the
    published global batch: 8 images on Cityscapes, 16 on VOC and ADE20K."""
    cfg = compose_config("train", [f"experiment={recipe}", "data.backbone_weights=null"])
    net = instantiate(cfg.model, _convert_="partial").net
    assert net.backbone.output_stride == 8 and net.aux_head is not None and cfg.model.aux_weight == 0.4
    assert cfg.data.batch_size * cfg.trainer.devices == (8 if recipe.startswith("cityscapes") else 16)
    tta = compose_config("train", [f"experiment={recipe}", "data.backbone_weights=null", "inference=tta"])
    assert tta.model.inference.scales, "eval.py inference=tta (the multi-scale + flip figure) must reach the model"


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_one_step_at_a_tiny_size(recipe, dataset_roots, tmp_path):
    semantic = is_semantic(recipe)
    cfg = make_cfg(tmp_path, *tiny_overrides(recipe, dataset_roots), *([RECORD_VALIDATION] if semantic else []))
    metrics = train(cfg)
    if semantic:  # the score the recipe is judged by, recomputed from the run's predictions
        assert_miou_is_recomputed(metrics, cfg.optimized_metric)
    else:
        assert 0.0 <= metrics[cfg.optimized_metric] <= 1.0
    logged = (tmp_path / "csv").rglob("metrics.csv")
    assert any("train/loss" in path.read_text() for path in logged)


def test_iteration_schedule_crosses_epochs_and_poly_spans_it(dataset_roots, tmp_path):
    """80k iterations are many epochs: training stops at max_steps, not at an epoch count, and the poly
    schedule decays over exactly those steps down to the recipe's floor (1e-4)."""
    recipe = "cityscapes_deeplabv3plus_r101"
    overrides = [*tiny_overrides(recipe, dataset_roots, max_steps=3), "data.batch_size=4"]
    cfg = make_cfg(tmp_path, *overrides)
    datamodule = build_datamodule(cfg)
    model = build_model(cfg, datamodule)
    trainer = build_trainer(cfg, logger=False, enable_checkpointing=False)
    trainer.fit(model, datamodule=datamodule)
    scheduler = trainer.lr_scheduler_configs[0].scheduler
    assert trainer.num_training_batches == 1 and trainer.current_epoch == 3  # 4 images, batch 4: one step an epoch
    assert trainer.global_step == 3 and scheduler.max_steps == 3
    assert scheduler.get_last_lr() == pytest.approx([1e-4, 1e-4])


def test_endless_run_with_a_schedule_is_refused(tmp_path):
    cfg = make_cfg(tmp_path, *TINY, "trainer.max_epochs=-1", "trainer.max_steps=-1", "callbacks=none")
    with pytest.raises(UserError, match="trainer.max_steps"):
        train(cfg)


def test_speed_benchmark_cpu_mode_reports_throughput_memory_and_mfu(tmp_path, monkeypatch, capsys):
    report = tmp_path / "speed.json"
    args = ["--cpu", "--recipes", "cityscapes_deeplabv3plus_r50", "--size", "32", "32", "--warmup", "0"]
    monkeypatch.setattr(sys, "argv", ["recipe_speed.py", *args, "--peak-tflops", "1", "--json", str(report)])
    runpy.run_path(str(REPO / "benchmarks" / "recipe_speed.py"), run_name="__main__")  # in-process: no new import
    assert "images/s" in capsys.readouterr().out
    rows = json.loads(report.read_text())
    assert [row["recipe"] for row in rows] == ["cityscapes_deeplabv3plus_r50"]
    row = rows[0]
    assert row["device"] == "cpu" and row["compile"] is False and row["precision"] == "bf16-mixed"
    assert row["channels_last"] is True and row["batch_size"] == 2 and row["crop"] == [32, 32]
    assert row["iterations"] == 2 and row["images_per_s"] > 0
    assert row["peak_memory_gib"] is None  # no GPU memory on the CPU
    # 2 per multiply-add, forward + backward: a ResNet-50 D8 DeepLabV3+ with its aux head, about 4.5 GFLOPs per
    # 32x32 image (and 1/1024 of that 512x1024 crop's)
    assert 2e9 < row["train_flops_per_image"] < 1e10
    assert 0 < row["mfu"] < 1 and row["achieved_tflops"] == pytest.approx(row["mfu"] * 1.0)
