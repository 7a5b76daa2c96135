"""Where the Hydra configs live, composing them outside ``@hydra.main``, and reading a run's overrides."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf


def _config_dir() -> Path:
    """The Hydra configs: ``seglab/conf`` in an installed wheel (setuptools maps the top-level ``conf/`` there, see
    pyproject.toml), else the checkout's ``conf/`` (a checkout on ``PYTHONPATH``, an editable install)."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "conf"
    return packaged if packaged.is_dir() else package.parents[1] / "conf"


CONFIG_DIR = str(_config_dir())


def _folder_classes(root: str | None) -> list[str]:
    from seglab.data.datasets.folder import folder_class_names  # lazy: keeps `train.py --help` light

    return folder_class_names(root)


def _coco_classes(root: str | None, *splits: str | None) -> list[str]:
    from seglab.data.datasets.coco_categories import split_class_names  # lazy, as above

    return split_class_names(root, *splits)


# conf/data/folder.yaml reads its class names from <data.root>/classes.yaml, conf/data/coco.yaml from the
# categories of the splits' annotation files.
OmegaConf.register_new_resolver("seglab.folder_classes", _folder_classes, use_cache=True, replace=True)
OmegaConf.register_new_resolver("seglab.coco_classes", _coco_classes, use_cache=True, replace=True)
OmegaConf.register_new_resolver("seglab.len", len, replace=True)
# ${seglab.range:1,${data.num_classes}}: the class ids 1..N-1 (every class but background).
OmegaConf.register_new_resolver("seglab.range", lambda start, stop: list(range(start, stop)), replace=True)


def _slurm_nodes() -> int:
    """The node count of the SLURM job Lightning runs in (its SLURM environment checks trainer.num_nodes), else 1."""
    from lightning.fabric.plugins.environments import SLURMEnvironment  # lazy: keeps `train.py --help` light

    return int(os.environ["SLURM_NNODES"]) if SLURMEnvironment.detect() else 1


OmegaConf.register_new_resolver("seglab.slurm_nodes", _slurm_nodes, replace=True)
# conf/hydra/launcher/submitit_slurm.yaml lists every field of the plugin's schema of the same name, so Hydra's
# deprecated check of the file against that schema changes nothing (and the file stays whole once Hydra drops it).
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/submitit_slurm' is validated against ConfigStore schema")


def compose_config(
    config_name: str = "train", overrides: Sequence[str] = (), return_hydra_config: bool = False
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with command-line style overrides.

    Works both inside a running Hydra app (``@hydra.main``) and from plain Python (tests, notebooks).
    """
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3", job_name=config_name):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)


def command_keys(config_name: str, config_dir: str | Path = CONFIG_DIR) -> tuple[str, ...]:
    """The top-level keys ``conf/<config_name>.yaml`` sets itself, beside its defaults list (``eval``: ``ckpt_path``,
    ``eval``, ``export``, ``task_name``): the command's own keys, which a checkpoint command does not hand on to the
    training config it rebuilds (:func:`seglab.checkpointing.restore.training_config`)."""
    own = OmegaConf.load(Path(config_dir) / f"{config_name}.yaml")
    return tuple(key for key in own if key != "defaults")


def group_options(group: str) -> list[str]:
    """The options of a config group (``model/backbone`` -> ``efficientnet_b0``, ``mobilenet_v2``, ...)."""
    return sorted(path.stem for path in (Path(CONFIG_DIR) / group).glob("*.yaml"))


def run_overrides() -> list[str]:
    """The command-line overrides of the current Hydra run (empty outside of one)."""
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def job_run_name(name: str | None) -> str | None:
    """``name`` with the job number appended inside a Hydra multirun, so that the jobs' dashboard runs differ."""
    if name is None or not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return name
    return f"{name}-{HydraConfig.get().job.num}"


def override_key(override: str) -> str:
    """The key or config group an override sets: ``data.root=/x`` -> ``data.root``, ``model/backbone=r50`` -> ``model/backbone``."""
    return OverridesParser.create().parse_override(override).key_or_group


def merge_overrides(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    """``base`` then ``extra``, where an override in ``extra`` replaces every ``base`` override of the same key and,
    for a config group, every ``base`` override inside that group (``data=voc`` drops ``data.root=...``)."""
    extra_keys = [override_key(o).replace("/", ".") for o in extra]

    def replaced(override: str) -> bool:
        key = override_key(override).replace("/", ".")
        return any(key == k or key.startswith(k + ".") for k in extra_keys)

    return [o for o in base if not replaced(o)] + list(extra)


def quote_override_value(value: str) -> str:
    """Quote a string so the Hydra override grammar reads it literally (paths with spaces, commas, ...)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"
