"""The five commands, built one way: ``python -m seglab <command>``, the per-command keys derived from the config
files, and the tasks saying what the commands may ask of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

import seglab.commands.entry as entry
from seglab.commands.evaluate import EVAL_ONLY_KEYS
from seglab.commands.export import EXPORT_ONLY_KEYS
from seglab.commands.predict import PREDICT_ONLY_KEYS
from seglab.config.builders import instantiate_part
from seglab.config.compose import CONFIG_DIR, command_keys, compose_config, group_options
from seglab.runtime.errors import UserError
from seglab.tasks.instance import InstanceSegmentationModule
from seglab.tasks.semantic import SemanticSegmentationModule
from seglab.writers.instances import INSTANCE_EXPORT_FORMATS
from seglab.writers.semantic import EXPORT_FORMATS

from tests.helpers import QUICK
from tests.helpers.commands import logging_restored

COMMANDS = ("train", "eval", "predict", "export", "report")


def test_help_lists_the_five_commands_and_an_unknown_one_is_one_line(capsys):
    entry.dispatch(["--help"])
    listing = capsys.readouterr().out
    assert "usage: python -m seglab <command> [overrides]" in listing
    assert [line.split()[0] for line in listing.splitlines() if line.startswith("  ")] == list(COMMANDS)
    entry.dispatch([])
    assert capsys.readouterr().out == listing
    with pytest.raises(SystemExit) as exit_info:
        entry.dispatch(["evaluate", "ckpt_path=x"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        "error: 'evaluate' is not a seglab command; use one of train, eval, predict, export, report (python -m seglab --help)\n"
    )


def test_python_m_seglab_runs_the_command_and_keeps_its_name_for_other_ranks(tmp_path, monkeypatch):
    """In process: the entry composes conf/<command>.yaml with the overrides, runs the command module's run(cfg)
    with the command line as typed in sys.argv (Lightning's DDP launcher restarts the other ranks from it)."""
    import seglab.commands.train as train_command

    seen = {}

    def run(cfg):
        seen.update(argv=list(sys.argv[1:]), seed=cfg.seed, task_name=cfg.task_name)
        return 0.5

    monkeypatch.setattr(train_command, "run", run)
    monkeypatch.setattr(sys, "argv", ["seglab"])
    typed = ["seed=3", f"hydra.run.dir={tmp_path}", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]
    with logging_restored():  # the disabled job logging would silence the loggers of later tests
        entry.dispatch(["train", *typed])
    assert seen == {"argv": ["train", *typed], "seed": 3, "task_name": "train"}
    assert sys.argv[1:] == ["train", *typed]
    entry._prefix.clear()


def test_the_entries_import_no_command_module_until_they_run():
    code = (
        "import sys, seglab.commands.entry as e; e.COMMANDS; "
        "print(sorted(m for m in sys.modules if m.startswith('seglab.commands.') or m in ('lightning', 'torch')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['seglab.commands.entry']"


@pytest.mark.parametrize("command", ["eval", "predict", "export", "report"])
def test_a_commands_own_keys_are_the_ones_its_config_file_sets(command):
    own = command_keys(command)
    composed, training = compose_config(command), compose_config("train")
    assert "defaults" not in own and set(own) <= set(composed)
    assert set(composed) - set(training) <= set(own)  # nothing the command adds reaches the training config
    assert {"task_name"} <= set(own)
    assert {"eval": EVAL_ONLY_KEYS, "predict": PREDICT_ONLY_KEYS, "export": EXPORT_ONLY_KEYS}.get(command, own) == own


def test_a_key_added_to_a_commands_config_file_is_one_of_its_keys(tmp_path):
    source = OmegaConf.load(Path(CONFIG_DIR) / "eval.yaml")
    source.new_option = 1
    OmegaConf.save(source, tmp_path / "eval.yaml")
    assert command_keys("eval", tmp_path) == (*EVAL_ONLY_KEYS, "new_option")
    assert entry.defer_to_checkpoint(["new_option=2", "seed=1"], command_keys("eval", tmp_path)) == ["new_option=2", "++seed=1"]


def test_tasks_say_which_modes_and_formats_they_support():
    assert SemanticSegmentationModule.inference_modes == tuple(sorted(group_options("inference"), key=("whole", "slide", "tta").index))
    assert InstanceSegmentationModule.inference_modes == ("whole",)
    assert SemanticSegmentationModule.export_formats == EXPORT_FORMATS and InstanceSegmentationModule.export_formats == INSTANCE_EXPORT_FORMATS
    assert SemanticSegmentationModule.exportable and not InstanceSegmentationModule.exportable
    assert not SemanticSegmentationModule.needs_instance_targets and InstanceSegmentationModule.needs_instance_targets


def test_a_semantic_task_refuses_what_it_does_not_support(tmp_path):
    cfg = compose_config("train", [*QUICK, "model.backbone.weights=null"])
    module = instantiate_part(cfg.model)
    for mode in group_options("inference"):
        module.check_inference_mode("eval.mode", mode)
    with pytest.raises(UserError, match=r"eval.mode=crf is not an inference mode; use one of whole, slide, tta"):
        module.check_inference_mode("eval.mode", "crf")
    with pytest.raises(UserError, match=r"export.format='coco' is not a prediction format; use one of \['cityscapes', 'png', 'color'\]"):
        module.prediction_writer("coco", tmp_path, instantiate_part(cfg.data))
    writer = module.prediction_writer("color", tmp_path, instantiate_part(cfg.data))
    assert writer.export_format == "color" and writer.normalize is not None
