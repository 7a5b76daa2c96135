"""The composed config as a Rich tree at the start of a run: one branch per top-level group (``model``, ``data``,
``trainer``, ...) holding its YAML, the run's own keys (``seed``, ``ckpt_path``, ...) in a first branch; secrets
masked as in the run directory's files (:func:`seglab.tracking.redaction.redact`). ``print_config=false`` turns it off."""

from __future__ import annotations

import io
import re
import shutil
import sys
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from seglab.tracking.redaction import redact

# The run's own keys, the branch the tree starts with.
RUN_BRANCH = "run"


class _CompactDumper(yaml.SafeDumper):
    """YAML with lists of plain values on one line (``trimap_widths: [1, 2, 5]``)."""


def _list(dumper: yaml.SafeDumper, value: list) -> yaml.Node:
    flow = all(not isinstance(item, (dict, list)) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=flow)


_CompactDumper.add_representer(list, _list)


def _shared_groups_by_name(resolved: Any, raw: Any, top: dict | None = None) -> Any:
    """``resolved`` where a value that is a whole top-level group by interpolation (``model.loss: ${loss}``) stays
    ``${loss}``: the group has its own branch, shown once."""
    top = resolved if top is None else top
    if isinstance(raw, str) and re.fullmatch(r"\$\{(\w+)\}", raw) and isinstance(top.get(raw[2:-1]), dict):
        return raw
    if isinstance(resolved, dict) and isinstance(raw, dict):
        return {key: _shared_groups_by_name(value, raw.get(key), top) for key, value in resolved.items()}
    return resolved


def config_tree(cfg: DictConfig, width: int = 120) -> str:
    """The tree as text (what :func:`print_config_tree` prints)."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    config: dict[str, Any] = _shared_groups_by_name(
        redact(OmegaConf.to_container(cfg, resolve=True)), OmegaConf.to_container(cfg, resolve=False)
    )
    scalars = {key: value for key, value in config.items() if not isinstance(value, dict)}
    tree = Tree("config", guide_style="dim")
    groups = ({RUN_BRANCH: scalars} if scalars else {}) | {k: v for k, v in config.items() if isinstance(v, dict)}
    for name, node in groups.items():
        text = yaml.dump(node, Dumper=_CompactDumper, sort_keys=False, allow_unicode=True).rstrip() if node else "{}"
        tree.add(f"[bold]{name}[/bold]").add(Syntax(text, "yaml", theme="ansi_dark", background_color="default"))
    console = Console(file=io.StringIO(), width=width, color_system=None, highlight=False)
    console.print(tree)
    return console.file.getvalue()


def print_config_tree(cfg: DictConfig) -> None:
    """Print the tree to stdout unless ``cfg.print_config`` is false; rank 0 only."""
    from seglab.runtime.distributed import is_rank_zero

    if cfg.get("print_config", True) and is_rank_zero():
        sys.stdout.write(config_tree(cfg, shutil.get_terminal_size().columns))
        sys.stdout.flush()
