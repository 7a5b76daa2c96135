"""An installed seglab (a non-editable wheel in a fresh venv, outside the checkout) has its commands and configs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from seglab.config.compose import CONFIG_DIR

REPO = Path(__file__).resolve().parents[1]
COMMANDS = ("seglab-train", "seglab-eval", "seglab-predict", "seglab-export", "seglab-report")


def run(*command: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_a_checkout_composes_its_own_conf_folder():
    assert Path(CONFIG_DIR) == REPO / "conf"
    assert not (REPO / "src" / "seglab" / "conf").exists()  # no link: the wheel gets the configs from setuptools


def test_the_wheel_installs_commands_that_compose_the_packaged_configs(tmp_path):
    # Build from a copy of what the wheel is made of, so the checkout gets no build/ or egg-info folders.
    source = tmp_path / "source"
    for name in ("src", "conf"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO / name, source / name)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    run(*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", source, cwd=tmp_path, env=env)
    (wheel,) = (tmp_path / "dist").glob("seglab-*.whl")

    # A fresh venv whose site-packages reach the shared venv's packages (torch, Lightning, ...) through a .pth file;
    # a plain path line runs none of the .pth files there, so the shared venv's editable seglab stays out.
    prefix = tmp_path / "venv"
    venv.create(prefix, with_pip=False)
    bin_dir = prefix / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    site = Path(sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)}))
    (site / "shared_venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(*pip, "--python", python, "install", "--no-deps", "--no-index", wheel, cwd=tmp_path, env=env)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = run(python, "-c", "import seglab.config.compose as c; print(c.__file__); print(c.CONFIG_DIR)", cwd=outside, env=env)
    module, config_dir = where.stdout.split()
    assert Path(module).is_relative_to(site) and Path(config_dir) == site / "seglab" / "conf"
    assert sorted(p.name for p in (site / "seglab" / "conf" / "model" / "backbone").glob("*.yaml")) == sorted(
        p.name for p in (REPO / "conf" / "model" / "backbone").glob("*.yaml")
    )
    assert all((bin_dir / command).is_file() for command in COMMANDS)

    job = run(bin_dir / "seglab-train", "--cfg", "job", "model=deeplabv3", cwd=outside, env=env).stdout
    assert "task_name: train" in job and "_target_: seglab.models.decoders" in job
    help_text = run(python, "-m", "seglab", "train", "--help", cwd=outside, env=env).stdout
    assert "train is powered by Hydra" in help_text and "model: deeplabv1, deeplabv2, deeplabv3" in help_text
