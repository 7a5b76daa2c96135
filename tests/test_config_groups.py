"""Config groups are orthogonal: data= never changes the model, a model preset never changes loss= or optimizer=,
and the order of train.yaml's defaults list does not matter. Panoptic-DeepLab's paper setting is an experiment,
and its unsuited default optimizer is refused."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from seglab.config.builders import instance_targets
from seglab.config.compose import CONFIG_DIR, compose_config, group_options
from seglab.config.preflight import check_optimizer_choice
from seglab.runtime.errors import UserError

from tests.helpers import make_cfg

CONF = Path(CONFIG_DIR)
DATA = group_options("data")


def unresolved(cfg, key):
    return OmegaConf.to_container(OmegaConf.select(cfg, key), resolve=False)


def test_no_data_or_model_config_reaches_into_another_group():
    for group in ("data", "model"):
        for path in sorted((CONF / group).rglob("*.yaml")):
            text = path.read_text()
            assert "_global_" not in text and "override /" not in text, path
    for path in sorted((CONF / "data").rglob("*.yaml")):
        assert not re.search(r"\$\{[^}]*\bmodel\.", path.read_text()), f"{path} reads the model's config"


def test_choosing_data_never_changes_the_model():
    """Every data option with the preset whose data once chose its backbone and read its keys."""
    chosen = {data: compose_config("train", ["model=panoptic_deeplab", f"data={data}"], return_hydra_config=True) for data in DATA}
    assert {cfg.hydra.runtime.choices["model/backbone"] for cfg in chosen.values()} == {"resnet50"}
    models = {data: unresolved(cfg, "model") for data, cfg in chosen.items()}
    assert all(node == models["synthetic"] for node in models.values())


# The backbones the papers trained (docs/configs.md): ResNet-50 for Panoptic-DeepLab and Mask R-CNN, ResNet-101 for
# the semantic presets; the generic smp preset starts from smp's usual ResNet-50.
PAPER_BACKBONES = {"panoptic_deeplab": "resnet50", "maskrcnn": "resnet50", "smp": "resnet50"}


def test_each_preset_trains_its_papers_backbone_whatever_the_data():
    for model in group_options("model"):
        for data in ("synthetic", "cityscapes"):
            cfg = compose_config("train", [f"model={model}", f"data={data}"], return_hydra_config=True)
            assert cfg.hydra.runtime.choices["model/backbone"] == PAPER_BACKBONES.get(model, "resnet101"), (model, data)


def test_a_preset_never_changes_the_loss_or_the_optimizer():
    default = compose_config("train")
    for model in ("panoptic_deeplab", "maskrcnn"):  # the others: no config of model/ overrides anything (above)
        cfg = compose_config("train", [f"model={model}"])
        assert unresolved(cfg, "loss") == unresolved(default, "loss"), model
        assert unresolved(cfg, "optimizer") == unresolved(default, "optimizer"), model
    typed = compose_config("train", ["model=panoptic_deeplab", "loss=focal", "optimizer=adamw"])
    assert typed.loss._target_.endswith("FocalLoss") and typed.optimizer._target_ == "torch.optim.AdamW"


def test_the_order_of_train_yamls_defaults_does_not_matter(tmp_path):
    conf = shutil.copytree(CONF, tmp_path / "conf")
    train_yaml = OmegaConf.load(conf / "train.yaml")
    # The parts in reverse order; experiment, hparams_search and debug stay last: they override parts, and Hydra
    # overrides only what comes before.
    entries = [entry for entry in train_yaml.defaults if entry != "_self_"]
    overriding = [entry for entry in entries if set(entry) & {"experiment", "hparams_search", "debug"}]
    assert len(overriding) == 3
    train_yaml.defaults = ["_self_", *reversed([entry for entry in entries if entry not in overriding]), *overriding]
    OmegaConf.save(train_yaml, conf / "train.yaml")
    overrides = [["model=panoptic_deeplab", "data=cityscapes"], ["experiment=quickstart"]]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        reversed_order = [OmegaConf.to_container(compose("train", o), resolve=False) for o in overrides]
    assert reversed_order == [OmegaConf.to_container(compose_config("train", o), resolve=False) for o in overrides]


def test_panoptic_deeplabs_paper_setting_is_an_experiment_and_sgd_by_default_is_refused(tmp_path):
    with pytest.raises(UserError) as refused:
        check_optimizer_choice(make_cfg(tmp_path, "model=panoptic_deeplab"))
    assert str(refused.value) == (
        "model=panoptic_deeplab trains with optimizer=adam (SGD at lr 0.01 diverges under the centre heatmap loss's "
        "weight of 200), not the default optimizer=sgd: add experiment=panoptic_deeplab (its paper's optimizer and "
        "loss) or optimizer=adam; optimizer=sgd typed on the command line trains with it anyway"
    )
    paper = make_cfg(tmp_path, "experiment=panoptic_deeplab")
    check_optimizer_choice(paper)
    assert paper.optimizer._target_ == "torch.optim.Adam" and paper.optimizer.lr == 1e-3
    assert paper.loss._target_.endswith("OhemCrossEntropyLoss") and paper.loss.top_k_percent == 0.2
    for chosen in (["optimizer=sgd"], ["optimizer=adamw"], ["experiment=cityscapes_panoptic_deeplab_r50"]):
        check_optimizer_choice(make_cfg(tmp_path, "model=panoptic_deeplab", *chosen))  # chosen: trained as asked
    for model in ("maskrcnn", "deeplabv3plus"):
        check_optimizer_choice(make_cfg(tmp_path, f"model={model}"))  # their papers' optimizer is SGD


def test_the_quick_synthetic_run_gets_resnet18_from_an_experiment_not_from_the_data():
    assert compose_config("train", ["experiment=quickstart"]).model.backbone.name == "resnet18"
    assert compose_config("train").model.backbone.name == "resnet101"  # the preset's, whatever the data
    assert compose_config("train", ["model=pspnet", "data=synthetic"]).model.backbone.name == "resnet101"


def test_the_task_decides_whether_the_data_returns_instance_targets():
    def targets(*overrides):
        return instance_targets(compose_config("train", list(overrides)))

    assert targets("model=panoptic_deeplab") == targets("model=maskrcnn", "data=cityscapes") == {"return_instances": True}
    assert targets("model=deeplabv3plus") == {"return_instances": False}
    assert targets("model=deeplabv3plus", "data.return_instances=true") == {}  # as set
    with pytest.raises(UserError, match="data.return_instances=false, but MaskRCNNModule trains on instance targets"):
        targets("model=maskrcnn", "data.return_instances=false")
