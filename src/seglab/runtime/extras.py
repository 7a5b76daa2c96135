"""The optional integrations, each installed by an extra of seglab: choosing one that is missing is one line.

``pip install seglab`` installs what every run needs; W&B, MLflow, TensorBoard, the Optuna sweeper, the submitit
launchers, ONNX export and the C++ dense CRF come with ``pip install 'seglab[<extra>]'`` (``seglab[all]``: all of
them). Where a run chooses one (``logger=wandb``, ``hparams_search=optuna``, ``hydra/launcher=submitit_slurm``,
``format=onnx``, ...), :func:`require_extra` refuses it, when its packages do not import, with the command that
installs them. The Hydra plugins' own config options (``hydra/sweeper=optuna``) do not exist without the plugin:
:func:`plugin_extra` tells :mod:`seglab.config.hydra_errors` which extra adds a missing one.
"""

from __future__ import annotations

import importlib
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from seglab.runtime.errors import UserError, exit_with_message

# extra -> the modules it installs that seglab imports (the extras of pyproject.toml, less all and dev).
EXTRAS: dict[str, tuple[str, ...]] = {
    "wandb": ("wandb",),
    "mlflow": ("mlflow", "sqlalchemy", "alembic"),
    "tensorboard": ("tensorboard",),
    "sweeps": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "slurm": ("hydra_plugins.hydra_submitit_launcher", "submitit"),
    "export": ("onnx", "onnxruntime"),
    "crf": ("pydensecrf",),
}
# The packages (hydra_plugins.<name>) of the Hydra plugins that extras install.
PLUGIN_EXTRAS = {"hydra_optuna_sweeper": "sweeps", "hydra_submitit_launcher": "slurm"}
# Config groups whose options come from a plugin (with the prefix of those options).
PLUGIN_OPTIONS = {"hydra/sweeper/optuna": "sweeps", "hydra/sweeper/sampler": "sweeps", "hydra/launcher/submitit": "slurm"}


def install_command(extra: str) -> str:
    return f"pip install 'seglab[{extra}]'"


def missing_modules(extra: str, modules: tuple[str, ...] | None = None) -> list[str]:
    """The modules of ``extra`` (or just ``modules`` of it) that do not import."""
    missing = []
    for module in modules or EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(module)
    return missing


def require_extra(extra: str, choice: str, modules: tuple[str, ...] | None = None) -> None:
    """Refuse ``choice`` (the option that picks the integration, e.g. ``logger=wandb``) when a module of
    ``seglab[extra]`` (or just ``modules`` of it) does not import."""
    missing = missing_modules(extra, modules)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise UserError(f"{choice} needs {', '.join(missing)}, which {verb} not installed: {install_command(extra)}")


def plugin_extra(missing_config: str) -> str | None:
    """The extra whose Hydra plugin provides the config ``missing_config`` (``hydra/sweeper/optuna``), if any."""
    return next((extra for prefix, extra in PLUGIN_OPTIONS.items() if missing_config.startswith(prefix)), None)


def check_plugins(config: DictConfig) -> None:
    """Refuse a config whose launcher or sweeper is a Hydra plugin of an extra that is not installed."""
    for part in ("launcher", "sweeper"):
        target = OmegaConf.select(config, f"hydra.{part}._target_") or ""
        package = target.split(".")[1] if target.startswith("hydra_plugins.") else None
        if package in PLUGIN_EXTRAS:
            option = (OmegaConf.select(config, "hydra.runtime.choices") or {}).get(f"hydra/{part}", target)
            require_extra(PLUGIN_EXTRAS[package], f"hydra/{part}={option}", (f"hydra_plugins.{package}",))


class PluginsInstalled(Callback):
    """Hydra callback: a multirun whose launcher or sweeper is a plugin that is not installed stops with the
    extra to install, before Hydra looks for the plugin (which it reports as ``Unknown plugin class``).

    seglab ships ``conf/hydra/launcher/submitit_slurm.yaml`` itself, so ``hydra/launcher=submitit_slurm`` composes
    without the plugin; the plugin is needed once the jobs are launched. Hydra turns what its callbacks raise into
    warnings, so the refusal prints its message and exits (status 2) itself.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_plugins(config)
        except UserError as err:
            exit_with_message(str(err), err)
