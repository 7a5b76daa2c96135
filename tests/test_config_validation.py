"""Every config value is checked before anything is built: one line naming the key, the value and what is allowed."""

from __future__ import annotations

import copy
import functools
import inspect

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf, open_dict

from seglab.commands.evaluate import EVAL_RULES
from seglab.commands.export import EXPORT_RULES
from seglab.commands.predict import PREDICT_RULES
from seglab.commands.report import REPORT_RULES
from seglab.commands.train import train
from seglab.config.validation import PRECISIONS, _compiled, check_config, training_rules
from seglab.runtime.errors import UserError

from tests.helpers import make_cfg

COMMAND_RULES = {"train": {}, "eval": EVAL_RULES, "predict": PREDICT_RULES, "export": EXPORT_RULES, "report": REPORT_RULES}
REQUIRED = {"eval": ["ckpt_path=x.ckpt"], "predict": ["ckpt_path=x.ckpt", "input=x.png"], "export": ["ckpt_path=x.ckpt"]}


@functools.lru_cache(maxsize=None)
def _composed(config_name: str, preset: tuple[str, ...], run_dir: str) -> DictConfig:
    return make_cfg(run_dir, *REQUIRED.get(config_name, []), *preset, config_name=config_name)


def problems(tmp_path_factory, *overrides: str, config_name: str = "train", preset: tuple[str, ...] = ()) -> str | None:
    """What check_config says about a config composed with ``preset`` after applying ``overrides`` as the command
    line would (parsed by Hydra's override parser, so ``abc``, ``-1`` and ``[7]`` arrive as they do in a run)."""
    cfg = copy.deepcopy(_composed(config_name, preset, str(tmp_path_factory.getbasetemp() / "validation")))
    parser = OverridesParser.create()
    with open_dict(cfg):
        for text in overrides:
            override = parser.parse_override(text)
            OmegaConf.update(cfg, override.key_or_group, override.value(), merge=False, force_add=True)
    try:
        check_config(cfg, COMMAND_RULES[config_name])
    except UserError as err:
        return str(err)
    return None


# (override, the message, or None where the value is allowed): for each kind of rule its boundaries, a value just
# outside, and a value of the wrong type.
CASES = [
    # positive integers
    ("data.batch_size=abc", "data.batch_size=abc: must be an integer >= 1"),
    ("data.batch_size=-1", "data.batch_size=-1: must be an integer >= 1"),
    ("data.batch_size=0", "data.batch_size=0: must be an integer >= 1"),
    ("data.batch_size=1", None),
    ("data.batch_size=8.0", "data.batch_size=8.0: must be an integer >= 1"),
    ("data.batch_size=true", "data.batch_size=true: must be an integer >= 1"),
    ("data.val_batch_size=null", None),
    ("data.val_batch_size=0", "data.val_batch_size=0: must be an integer >= 1 or null"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0: must be an integer >= 1"),
    ("callbacks.model_checkpoint.every_n_train_steps=0", "every_n_train_steps=0: must be an integer >= 1 or null"),
    # workers and steps may be 0
    ("data.num_workers=0", None),
    ("data.num_workers=-1", "data.num_workers=-1: must be an integer >= 0"),
    ("scheduler.warmup_steps=-1", "scheduler.warmup_steps=-1: must be an integer >= 0"),
    # epochs and steps: positive, or -1 for no limit
    ("trainer.max_epochs=0", "trainer.max_epochs=0: must be an integer >= 1, -1 (no limit) or null"),
    ("trainer.max_epochs=-1", None),
    ("trainer.max_epochs=-2", "trainer.max_epochs=-2: must be"),
    ("trainer.max_steps=0", "trainer.max_steps=0: must be an integer >= 1 or -1 (no limit)"),
    ("trainer.max_steps=100", None),
    # the seed: what numpy takes
    ("seed=0", None),
    ("seed=4294967295", None),
    ("seed=4294967296", "seed=4294967296: must be an integer in [0, 4294967295] or null"),
    ("seed=-1", "seed=-1: must be an integer in [0, 4294967295] or null"),
    # positive and non-negative numbers
    ("optimizer.lr=-1", "optimizer.lr=-1: must be a number > 0"),
    ("optimizer.lr=0", "optimizer.lr=0: must be a number > 0"),
    ("optimizer.lr=1e-9", None),
    ("optimizer.lr=nan", "optimizer.lr=nan: must be a number > 0"),
    ("optimizer.lr=inf", "optimizer.lr=inf: must be a number > 0"),
    ("optimizer.lr=fast", "optimizer.lr=fast: must be a number > 0"),
    ("optimizer.weight_decay=0", None),
    ("optimizer.weight_decay=-1e-4", "optimizer.weight_decay=-0.0001: must be a number >= 0"),
    ("trainer.gradient_clip_val=-0.1", "trainer.gradient_clip_val=-0.1: must be a number >= 0 or null"),
    # probabilities in [0, 1]
    ("optimizer.momentum=0", None),
    ("optimizer.momentum=1", None),
    ("optimizer.momentum=1.01", "optimizer.momentum=1.01: must be a number in [0, 1]"),
    ("optimizer.momentum=-0.01", "optimizer.momentum=-0.01: must be a number in [0, 1]"),
    ("model.classifier_dropout=1.5", "model.classifier_dropout=1.5: must be a number in [0, 1]"),
    ("loss.label_smoothing=-0.1", "loss.label_smoothing=-0.1: must be a number in [0, 1]"),
    # crop size: two positive integers
    ("data.crop_size=[7]", "data.crop_size=[7]: must be two integers >= 1, [height, width]"),
    ("data.crop_size=[7,0]", "data.crop_size=[7, 0]: must be two integers >= 1, [height, width]"),
    ("data.crop_size=[7,7.5]", "data.crop_size=[7, 7.5]: must be two integers >= 1"),
    ("data.crop_size=7", "data.crop_size=7: must be two integers >= 1"),
    ("data.crop_size=[1,1]", None),
    # batch limits: a count or a fraction
    ("+trainer.limit_val_batches=0", None),
    ("+trainer.limit_val_batches=0.5", None),
    ("+trainer.limit_val_batches=1.5", "trainer.limit_val_batches=1.5: must be an integer >= 0, a number in [0, 1] or null"),
    ("+trainer.limit_train_batches=-1", "trainer.limit_train_batches=-1: must be"),
    # flags, devices, paths
    ("trusted=yes", "trusted=yes: must be true or false"),
    ("test=1", "test=1: must be true or false"),
    ("trainer.deterministic=warn", None),
    ("trainer.deterministic=maybe", "trainer.deterministic=maybe: must be true, false, warn or null"),
    ("paths.log_dir=''", "paths.log_dir=: must be a path"),
    ("ckpt_path=[a,b]", "ckpt_path=[a, b]: must be a path or null"),
    ("paths.log_dir=2026", None),
    ("callbacks.validation_media.media_dir=null", None),
    ("callbacks.validation_media.media_dir=''", "callbacks.validation_media.media_dir=: must be a path or null"),
    ("callbacks.validation_media.curves=sometimes", "callbacks.validation_media.curves=sometimes: must be true or false"),
    ("trainer.devices=0", "trainer.devices=0: must be an integer >= 1, -1 (every device), auto, device indices as text"),
    ("trainer.devices='0,1'", None),
    ("trainer.devices=[0,1]", None),
    # enumerations
    ("trainer.precision=16-mix", "trainer.precision=16-mix: must be one of 32-true, 16-mixed, bf16-mixed"),
    ("trainer.accelerator=npu", "trainer.accelerator=npu: must be one of auto, gpu, cpu, cuda, mps, tpu or a config node"),
    ("callbacks.model_checkpoint.mode=best", "callbacks.model_checkpoint.mode=best: must be one of min, max"),
    ("auto_class_weights=equal", "auto_class_weights=equal: must be one of median_frequency, inverse_frequency"),
]


@pytest.mark.parametrize(("override", "message"), CASES, ids=[case[0] for case in CASES])
def test_each_rule_allows_its_range_and_names_key_value_and_rule(tmp_path_factory, override, message):
    found = problems(tmp_path_factory, override)
    if message is None:
        assert found is None
    else:
        assert found is not None and message in found and ";" not in found


# Keys that only some presets or commands have, each with a value just outside its rule.
PRESET_CASES = [
    ("train", ("loss=ce_dice",), "loss.terms.ce.label_smoothing=2", "loss.terms.ce.label_smoothing=2: must be a number in [0, 1]"),
    ("train", ("loss=ohem_topk_ce",), "loss.top_k_percent=0", "loss.top_k_percent=0: must be a number in (0, 1] or null"),
    ("train", ("callbacks=ema",), "callbacks.ema.decay=1.1", "callbacks.ema.decay=1.1: must be a number in [0, 1]"),
    ("train", ("optimizer=adam",), "+optimizer.betas=[0.9,1.0]", "optimizer.betas=[0.9, 1.0]: must be two numbers in [0, 1), [beta1, beta2]"),
    ("train", ("model=panoptic_deeplab",), "model.instance_decoder.out_channels=0", "model.instance_decoder.out_channels=0: must be an integer >= 1 or null"),
    ("train", ("model=panoptic_deeplab",), "model.center_weight=-1", "model.center_weight=-1: must be a number >= 0"),
    ("train", ("inference=slide",), "inference.stride=[0,8]", "inference.stride=[0, 8]: must be two integers >= 1, [height, width] or null"),
    ("train", ("inference=tta",), "inference.scales=[]", "inference.scales=[]: must be a non-empty list of numbers > 0"),
    ("eval", (), "eval.split=train", "eval.split=train: must be one of val, test"),
    ("eval", (), "eval.mode=sliding", "eval.mode=sliding: must be one of slide, tta, whole"),
    ("eval", (), "export.format=jpg", "export.format=jpg: must be one of cityscapes, png, color, coco or null"),
    ("predict", (), "predict.mode=sliding", "predict.mode=sliding: must be one of slide, tta, whole"),
    ("predict", (), "predict.device=gpu0", "predict.device=gpu0: must be auto, cpu, cuda, cuda:<index> or mps"),
    ("predict", (), "predict.overlay_alpha=2", "predict.overlay_alpha=2: must be a number in [0, 1]"),
    ("predict", (), "output_dir=null", "output_dir=null: must be a path"),
    ("export", (), "format=tflite", "format=tflite: must be one of onnx, torchscript"),
    ("export", (), "opset=6", "opset=6: must be an integer >= 7"),
    ("export", (), "atol=-1", "atol=-1: must be a number >= 0 or null"),
    ("report", (), "input_size=[64]", "input_size=[64]: must be two integers >= 1, [height, width]"),
    ("report", (), "erf_mass=0", "erf_mass=0: must be a number in (0, 1]"),
    ("report", (), "erf_samples=-1", "erf_samples=-1: must be an integer >= 0"),
]


@pytest.mark.parametrize(("config_name", "preset", "override", "message"), PRESET_CASES,
                         ids=[f"{case[0]}-{case[2]}" for case in PRESET_CASES])
def test_preset_and_command_keys_are_checked(tmp_path_factory, config_name, preset, override, message):
    assert problems(tmp_path_factory, override, config_name=config_name, preset=preset) == message


# Every choice of every enumeration is allowed.
CHOICES = [
    *(("train", f"trainer.precision={p}") for p in PRECISIONS),
    *(("train", f"trainer.accelerator={a}") for a in ("auto", "cpu", "gpu", "cuda", "mps", "tpu")),
    *(("train", f"callbacks.model_checkpoint.mode={m}") for m in ("min", "max")),
    *(("train", f"auto_class_weights={m}") for m in ("median_frequency", "inverse_frequency")),
    *(("eval", f"eval.split={s}") for s in ("val", "test")),
    *(("eval", f"eval.mode={m}") for m in ("whole", "slide", "tta")),
    *(("eval", f"export.format={f}") for f in ("null", "cityscapes", "png", "color", "coco")),
    *(("predict", f"predict.mode={m}") for m in ("whole", "slide", "tta")),
    *(("predict", f"predict.device={d}") for d in ("auto", "cpu", "cuda", "cuda:1", "mps")),
    *(("export", f"format={f}") for f in ("onnx", "torchscript")),
]


@pytest.mark.parametrize(("config_name", "override"), CHOICES, ids=[case[1] for case in CHOICES])
def test_every_choice_of_an_enumeration_is_allowed(tmp_path_factory, config_name, override):
    assert problems(tmp_path_factory, override, config_name=config_name) is None


def test_every_mistake_is_reported_at_once_on_one_line(tmp_path_factory):
    found = problems(tmp_path_factory, "data.batch_size=abc", "optimizer.lr=-1", "data.crop_size=[7]")
    assert found == (  # in the order of the config
        "optimizer.lr=-1: must be a number > 0; data.batch_size=abc: must be an integer >= 1; "
        "data.crop_size=[7]: must be two integers >= 1, [height, width]"
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.backbone=resnet50"], "model.backbone=resnet50: model.backbone is a config group, chosen with "
                                      "model/backbone=<option> (one of efficientnet_b0, mobilenet_v2, resnet101, "
                                      "resnet18, resnet50, xception65), e.g. model/backbone=resnet50"),
        (["optimizer.lr=${lr}"], "optimizer.lr=${lr}: Interpolation key 'lr' not found"),
        (["ckpt_path=???"], "ckpt_path is required: give ckpt_path=<value>"),
    ],
    ids=["group-set-like-a-key", "interpolation", "required"],
)
def test_group_values_interpolations_and_required_values(tmp_path_factory, overrides, message):
    assert problems(tmp_path_factory, *overrides) == message


def test_train_refuses_bad_values_before_building_anything(tmp_path, monkeypatch):
    monkeypatch.setattr("seglab.commands.train.preflight", lambda cfg: pytest.fail("the config was used before it was checked"))
    with pytest.raises(UserError, match=r"^data.batch_size=-1: must be an integer >= 1$"):
        train(make_cfg(tmp_path, "data.batch_size=-1"))
    assert list(tmp_path.iterdir()) == []


# Presets and commands that between them hold every key the rules name.
COMPOSED = [("train", ()), ("train", ("experiment=panoptic_deeplab",)), ("train", ("model=maskrcnn",)),
            ("train", ("model=deeplabv1", "postprocess=densecrf")), ("train", ("model=pspnet",)),
            ("train", ("model=deeplabv3", "loss=ce_dice", "+loss@loss.terms.focal=focal", "+loss@loss.terms.ohem=ohem_ce",
                       "+loss@loss.terms.tversky=tversky", "+loss@loss.terms.lovasz=lovasz")),
            ("train", ("loss=ohem_ce",)), ("train", ("loss=tversky", "callbacks=ema", "logger=many")),
            ("train", ("loss=lovasz", "inference=slide", "trainer=ddp_cpu", "debug=overfit")),
            ("train", ("inference=tta", "logger=mlflow", "debug=fdr")), ("eval", ()), ("predict", ()),
            ("export", ()), ("report", ())]


def _arguments(target: str) -> set[str]:
    """The keyword arguments a ``_target_`` takes, those its base classes take through ``**kwargs`` included."""
    obj = get_object(target)
    names: set[str] = set()
    for cls in getattr(obj, "__mro__", [obj]):
        if cls is object:
            break
        try:
            names |= set(inspect.signature(cls).parameters)
        except ValueError:  # a builtin without a signature
            continue
    return names


def test_every_rule_names_a_key_of_some_config_or_an_argument_of_its_target(tmp_path_factory):
    keys: set[str] = set()
    targets: dict[str, set[str]] = {}
    for config_name, preset in COMPOSED:
        cfg = OmegaConf.to_container(_composed(config_name, preset, str(tmp_path_factory.getbasetemp() / "rules")))

        def walk(node, prefix=""):
            for name, value in node.items():
                keys.add(prefix + name)
                if isinstance(value, dict):
                    if "_target_" in value:
                        targets.setdefault(prefix + name, set()).update(_arguments(value["_target_"]))
                    walk(value, f"{prefix}{name}.")

        walk(cfg)
    tables = [training_rules(), *COMMAND_RULES.values()]
    unused = []
    for pattern in [pattern for table in tables for pattern in table]:
        parent, _, name = pattern.rpartition(".")
        if any(_compiled(pattern).fullmatch(key) for key in keys):
            continue
        arguments = set().union(*(args for node, args in targets.items() if _compiled(parent).fullmatch(node)))
        if not any(_compiled(name).fullmatch(argument) for argument in arguments):
            unused.append(pattern)
    assert unused == []
