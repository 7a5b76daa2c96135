"""Optional integrations: choosing one whose extra is not installed is one line naming `pip install 'seglab[...]'`.

Each package is hidden in-process (``sys.modules[name] = None`` makes its import fail as if it were not installed).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
import torch
from hydra.core.config_store import ConfigStore
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf

from seglab.commands.export import export_onnx, run_exported
from seglab.config.builders import instantiate_part
from seglab.config.compose import compose_config
from seglab.config.hydra_errors import explain_composition_error
from seglab.inference.crf import DenseCRF
from seglab.runtime.errors import UserError
from seglab.runtime.extras import EXTRAS, PLUGIN_OPTIONS, PluginsInstalled, check_plugins

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())


def hide(monkeypatch, *modules: str) -> None:
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_the_extras_are_those_of_pyproject_and_all_installs_each():
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(EXTRAS) == set(extras) - {"all", "dev"}
    assert extras["all"] == [f"seglab[{','.join(EXTRAS)}]"]
    core = " ".join(PYPROJECT["project"]["dependencies"])
    for integration in ("wandb", "mlflow", "tensorboard", "optuna", "submitit", "onnx", "densecrf"):
        assert integration not in core


@pytest.mark.parametrize(
    ("logger", "hidden", "extra"),
    [("wandb", "wandb", "wandb"), ("tensorboard", "tensorboard", "tensorboard"), ("mlflow", "mlflow", "mlflow"),
     ("mlflow", "sqlalchemy", "mlflow")],
)  # fmt: skip
def test_a_logger_whose_extra_is_missing_names_the_install(logger, hidden, extra, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    target = compose_config("train", [f"logger={logger}"]).logger[logger]._target_
    hide(monkeypatch, hidden)
    with pytest.raises(UserError) as err:
        instantiate_part(OmegaConf.create({"_target_": target, "save_dir": str(tmp_path)}))
    assert str(err.value) == f"logger={logger} needs {hidden}, which is not installed: pip install 'seglab[{extra}]'"


def test_several_loggers_stop_at_the_missing_one(tmp_path, monkeypatch):
    cfg = compose_config("train", ["logger=many"])
    assert list(cfg.logger) == ["csv", "tensorboard", "wandb"]
    hide(monkeypatch, "wandb")
    instantiate_part(OmegaConf.create({"_target_": cfg.logger.tensorboard._target_, "save_dir": str(tmp_path)}))
    with pytest.raises(UserError, match=r"^logger=wandb needs wandb, .* pip install 'seglab\[wandb\]'$"):
        instantiate_part(OmegaConf.create({"_target_": cfg.logger.wandb._target_, "save_dir": str(tmp_path)}))


def test_mlflow_with_a_server_needs_no_sqlite_store(tmp_path, monkeypatch):
    cfg = compose_config("train", ["logger=mlflow"])
    hide(monkeypatch, "sqlalchemy", "alembic")
    logger = instantiate_part(
        OmegaConf.create({"_target_": cfg.logger.mlflow._target_, "tracking_uri": "http://127.0.0.1:9"})
    )  # nothing is sent before the run starts
    assert logger._tracking_uri == "http://127.0.0.1:9"


@pytest.mark.parametrize(("option", "extra"), [("hparams_search=optuna", "sweeps"), ("hydra/sweeper=optuna", "sweeps"),
                                               ("hydra/launcher=submitit_local", "slurm")])  # fmt: skip
def test_a_plugin_option_without_its_plugin_names_the_install(option, extra, monkeypatch):
    compose_config("train", [option], return_hydra_config=True)  # with the plugin: composes
    repo = ConfigStore.instance().repo["hydra"]
    for group, name in (("sweeper", "optuna.yaml"), ("sweeper", "sampler"), ("launcher", "submitit_local.yaml"),
                        ("launcher", "submitit_slurm.yaml")):  # fmt: skip
        monkeypatch.delitem(repo[group], name)  # what the plugin registers when Hydra loads it
    hide(monkeypatch, *EXTRAS[extra])
    with pytest.raises(MissingConfigException) as err:
        compose_config("train", [option], return_hydra_config=True)
    group, _, choice = err.value.missing_cfg_file.rpartition("/")
    assert explain_composition_error(err.value) == (
        f"{group}={choice} comes with a Hydra plugin that is not installed: pip install 'seglab[{extra}]'"
    )


def test_every_plugin_option_named_is_one_the_plugins_add():
    repo = ConfigStore.instance().repo
    compose_config("train", ["hparams_search=optuna"], return_hydra_config=True)  # loads the plugins
    for prefix in PLUGIN_OPTIONS:
        *groups, name = prefix.split("/")
        node = repo
        for group in groups:
            node = node[group]
        assert any(key.startswith(name) for key in node), prefix


def test_slurm_launcher_without_the_plugin_stops_the_multirun_with_the_install(monkeypatch, capsys):
    cfg = compose_config("train", ["hydra/launcher=submitit_slurm"], return_hydra_config=True)
    assert cfg.hydra.callbacks.plugins_installed._target_ == "seglab.runtime.extras.PluginsInstalled"
    PluginsInstalled().on_multirun_start(cfg)  # installed: nothing to say
    hide(monkeypatch, "hydra_plugins.hydra_submitit_launcher")
    with pytest.raises(SystemExit) as exit:
        PluginsInstalled().on_multirun_start(cfg)
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        "error: hydra/launcher=submitit_slurm needs hydra_plugins.hydra_submitit_launcher, which is not installed: "
        "pip install 'seglab[slurm]'\n"
    )
    check_plugins(compose_config("train", [], return_hydra_config=True))  # the basic launcher needs no plugin


def test_onnx_export_without_the_export_extra_names_the_install(tmp_path, monkeypatch):
    model = torch.nn.Conv2d(3, 2, 1)
    hide(monkeypatch, "onnx")
    with pytest.raises(UserError, match=r"^format=onnx needs onnx, which is not installed: pip install 'seglab\[export\]'$"):
        export_onnx(model, tmp_path / "model.onnx")
    hide(monkeypatch, "onnxruntime")
    with pytest.raises(UserError, match=r"needs onnxruntime, .* pip install 'seglab\[export\]'$"):
        run_exported(tmp_path / "model.onnx", torch.zeros(1, 3, 8, 8))


def test_the_pydensecrf_backend_without_the_crf_extra_names_the_install(monkeypatch):
    hide(monkeypatch, "pydensecrf", "pydensecrf.densecrf")
    probs = torch.full((1, 2, 4, 4), 0.5)
    with pytest.raises(UserError, match=r"pip install 'seglab\[crf\]'"):
        DenseCRF(method="pydensecrf")(probs, torch.zeros(1, 3, 4, 4, dtype=torch.uint8))
    DenseCRF(method="exact")(probs, torch.zeros(1, 3, 4, 4, dtype=torch.uint8))  # the torch methods need nothing


def test_the_version_is_written_once_in_pyproject():
    import seglab

    assert seglab.__version__ == PYPROJECT["project"]["version"]  # read from the installed metadata
    sources = Path(seglab.__file__).parent.rglob("*.py")
    assert not [p for p in sources if PYPROJECT["project"]["version"] in p.read_text()]
