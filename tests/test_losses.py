"""Every loss option: ignored pixels, perfect predictions, class weights, OHEM's kept pixels, combinations."""

from __future__ import annotations

import math

import pytest
import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from seglab.config.compose import compose_config
from seglab.losses import CrossEntropyLoss, FocalLoss, LovaszSoftmaxLoss, OhemCrossEntropyLoss
from seglab.losses.class_weights import check_class_weights, class_weight_nodes
from seglab.runtime.errors import UserError

from tests.helpers import raises_user_error

LOSSES = ["ce", "ohem_ce", "ohem_topk_ce", "dice", "jaccard", "tversky", "focal", "lovasz", "ce_dice", "ce_lovasz"]
NUM_CLASSES = 5  # the synthetic data's
IGNORE = 255


def loss_config(option: str, *overrides: str, class_weights: list[float] | None = None):
    cfg = compose_config("train", [f"loss={option}", *overrides])
    for _, node in class_weight_nodes(cfg.loss):  # every term of a combination too
        node.class_weights = class_weights
    return cfg


def build_loss(option: str, *overrides: str, class_weights: list[float] | None = None) -> torch.nn.Module:
    return instantiate(loss_config(option, *overrides, class_weights=class_weights).loss, _convert_="partial")


def labels(seed: int = 0, size: int = 16, ignored: float = 0.25) -> torch.Tensor:
    """Two (size x size) label maps using every class, with a share of ignored pixels."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, NUM_CLASSES, (2, size, size), generator=generator)
    target[torch.rand(target.shape, generator=generator) < ignored] = IGNORE
    return target


def random_logits(target: torch.Tensor, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(target.shape[0], NUM_CLASSES, *target.shape[1:], generator=generator).requires_grad_()


def confident_logits(predicted: torch.Tensor, margin: float = 30.0) -> torch.Tensor:
    """Logits that put (almost) all the probability on ``predicted`` (N, H, W)."""
    return (F.one_hot(predicted, NUM_CLASSES).permute(0, 3, 1, 2).float() * margin).requires_grad_()


@pytest.mark.parametrize("option", LOSSES)
def test_ignored_pixels_get_no_gradient_and_do_not_change_the_loss(option):
    loss_fn = build_loss(option)
    target = labels()
    ignored = (target == IGNORE).unsqueeze(1).expand(-1, NUM_CLASSES, -1, -1)
    logits = random_logits(target)
    loss = loss_fn(logits, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert logits.grad[ignored].abs().max() == 0
    assert logits.grad[~ignored].abs().max() > 0
    scrambled = logits.detach().clone()
    scrambled[ignored] = torch.randn(int(ignored.sum())) * 10
    assert loss_fn(scrambled, target).item() == pytest.approx(loss.item(), rel=1e-5)


@pytest.mark.parametrize("option", LOSSES)
def test_a_batch_of_only_ignored_pixels_costs_zero_without_nan(option):
    logits = random_logits(labels())
    loss = build_loss(option)(logits, torch.full(labels().shape, IGNORE))
    loss.backward()
    assert loss.shape == () and loss.item() == 0.0
    assert logits.grad.abs().max() == 0


@pytest.mark.parametrize("option", LOSSES)
def test_a_perfect_prediction_costs_almost_nothing(option):
    target = labels()
    perfect = confident_logits(target.clamp(max=NUM_CLASSES - 1))  # ignored pixels: any prediction
    wrong = confident_logits((target.clamp(max=NUM_CLASSES - 1) + 1) % NUM_CLASSES)
    loss_fn = build_loss(option)
    assert loss_fn(perfect, target).item() < 1e-4
    assert loss_fn(wrong, target).item() > 0.5


@pytest.mark.parametrize("option", LOSSES)
def test_weighting_up_a_mispredicted_class_raises_the_loss(option):
    """Class 1 is predicted as class 2 everywhere, every other class is right (with some doubt)."""
    target = labels()
    predicted = torch.where(target == 1, 2, target).clamp(max=NUM_CLASSES - 1)
    logits = confident_logits(predicted, margin=3.0)
    # Top-k OHEM keeps mispredicted class-1 pixels first: keep more than them so the weights have something to move.
    overrides = ["loss.top_k_percent=0.5"] if option == "ohem_topk_ce" else []
    plain = build_loss(option, *overrides)(logits, target).item()
    up = build_loss(option, *overrides, class_weights=[1.0, 5.0, 1.0, 1.0, 1.0])(logits, target).item()
    down = build_loss(option, *overrides, class_weights=[1.0, 0.2, 1.0, 1.0, 1.0])(logits, target).item()
    assert down < plain < up


@pytest.mark.parametrize("option", LOSSES)
def test_class_weights_of_the_wrong_length_are_refused_with_the_option_and_both_lengths(option):
    cfg = loss_config(option, class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(UserError, match=r"loss\.(terms\.\w+\.)?class_weights has 3 entries .* 5 classes"):
        check_class_weights(cfg)


@pytest.mark.parametrize(
    ("value", "message"),
    [("[1,2,-1,1,1]", ">= 0"), ("[0,0,0,0,0]", "not all 0"), ("often", "auto or null"), ("[1,2,x,1,1]", "numbers")],
)
def test_bad_class_weight_values_are_refused(value, message):
    with pytest.raises(UserError, match=message):
        check_class_weights(compose_config("train", [f"loss.class_weights={value}"]))


def hardest_pixel_mask(logits: torch.Tensor, target: torch.Tensor, count: int) -> torch.Tensor:
    """The ``count`` labelled pixels with the lowest probability of their true class."""
    valid = target != IGNORE
    p_true = logits.softmax(1).gather(1, target.clamp(max=NUM_CLASSES - 1).unsqueeze(1)).squeeze(1)
    p_true = torch.where(valid, p_true, torch.inf)
    mask = torch.zeros_like(valid)
    mask.view(-1)[p_true.view(-1).argsort()[:count]] = True
    return mask


def kept_pixels(loss_fn: torch.nn.Module, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pixels whose logits receive gradient: the ones the loss kept."""
    logits = logits.detach().clone().requires_grad_()
    loss_fn(logits, target).backward()
    return logits.grad.abs().sum(1) > 0


@pytest.mark.parametrize(("thresh", "min_kept"), [(0.3, 10), (0.3, 300), (0.3, 10_000), (0.9, 0)])
def test_ohem_threshold_form_keeps_the_hard_pixels_and_at_least_min_kept(thresh, min_kept):
    target = labels(size=24)
    logits = random_logits(target) * 2
    valid = target != IGNORE
    p_true = logits.softmax(1).gather(1, target.clamp(max=NUM_CLASSES - 1).unsqueeze(1)).squeeze(1)
    expected = max(int((p_true[valid] < thresh).sum()), min(min_kept, int(valid.sum())))
    loss_fn = build_loss("ohem_ce", f"loss.thresh={thresh}", f"loss.min_kept={min_kept}")
    kept = kept_pixels(loss_fn, logits, target)
    assert int(kept.sum()) == expected
    assert torch.equal(kept, hardest_pixel_mask(logits, target, expected))
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE, reduction="none")
    assert loss_fn(logits, target).item() == pytest.approx(per_pixel[kept].mean().item(), rel=1e-5)


@pytest.mark.parametrize("top_k_percent", [0.2, 0.05, 1.0])
def test_ohem_top_k_form_keeps_the_hardest_share_of_the_labelled_pixels(top_k_percent):
    target = labels(size=24)
    logits = random_logits(target) * 2
    expected = math.ceil(top_k_percent * int((target != IGNORE).sum()))
    loss_fn = build_loss("ohem_topk_ce", f"loss.top_k_percent={top_k_percent}")
    kept = kept_pixels(loss_fn, logits, target)
    assert int(kept.sum()) == expected
    assert torch.equal(kept, hardest_pixel_mask(logits, target, expected))


def test_ohem_needs_exactly_one_form():
    with raises_user_error("set exactly one"):
        build_loss("ohem_ce", "loss.top_k_percent=0.2")
    with raises_user_error("top_k_percent=1.5"):
        OhemCrossEntropyLoss(thresh=None, top_k_percent=1.5)


def test_ohem_with_class_weights_is_the_weighted_mean_over_the_kept_pixels():
    target = labels(size=24)
    logits = random_logits(target)
    weights = torch.tensor([1.0, 3.0, 0.5, 2.0, 1.0])
    loss_fn = OhemCrossEntropyLoss(class_weights=weights.tolist(), thresh=None, top_k_percent=0.3)
    kept = kept_pixels(loss_fn, logits, target)
    per_pixel = F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE, reduction="none")
    expected = per_pixel[kept].sum() / weights[target[kept]].sum()
    assert loss_fn(logits, target).item() == pytest.approx(expected.item(), rel=1e-5)


def test_cross_entropy_and_focal_with_gamma_0_match_pytorch():
    target = labels()
    logits = random_logits(target)
    weights = [1.0, 2.0, 3.0, 0.5, 0.1]
    expected = F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=IGNORE, label_smoothing=0.1)
    assert CrossEntropyLoss(class_weights=weights, label_smoothing=0.1)(logits, target).item() == pytest.approx(expected.item())
    plain = F.cross_entropy(logits, target, weight=torch.tensor(weights), ignore_index=IGNORE)
    assert FocalLoss(class_weights=weights, gamma=0.0)(logits, target).item() == pytest.approx(plain.item(), rel=1e-5)


def test_focal_loss_discounts_easy_pixels():
    target = labels()
    logits = confident_logits(target.clamp(max=NUM_CLASSES - 1), margin=2.0)
    assert FocalLoss(gamma=2.0)(logits, target) < 0.2 * FocalLoss(gamma=0.0)(logits, target)


@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_matches_smp_where_smp_handles_the_batch(per_image):
    target = labels()
    logits = random_logits(target)
    ours = LovaszSoftmaxLoss(per_image=per_image)(logits, target)
    theirs = smp.losses.LovaszLoss("multiclass", per_image=per_image, ignore_index=IGNORE)(logits, target)
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-5)


def test_lovasz_per_image_skips_an_image_without_labels():
    target = labels()
    logits = random_logits(target)
    only_second = LovaszSoftmaxLoss(per_image=True)(logits[1:], target[1:])
    target[0] = IGNORE
    assert LovaszSoftmaxLoss(per_image=True)(logits, target).item() == pytest.approx(only_second.item())


def test_combined_loss_is_the_weighted_sum_and_keeps_each_term():
    target = labels()
    logits = random_logits(target)
    loss_fn = build_loss("ce_dice", "loss.weights=[1.0,0.5]")
    total = loss_fn(logits, target)
    ce = CrossEntropyLoss()(logits, target)
    dice = smp.losses.DiceLoss("multiclass", ignore_index=IGNORE)(logits, target)
    assert set(loss_fn.last_terms) == {"ce", "dice"}
    assert loss_fn.last_terms["ce"].item() == pytest.approx(ce.item())
    assert loss_fn.last_terms["dice"].item() == pytest.approx(dice.item())
    assert total.item() == pytest.approx(ce.item() + 0.5 * dice.item())


def test_a_term_can_be_added_to_a_combination_from_the_command_line():
    loss_fn = build_loss("ce_lovasz", "+loss@loss.terms.focal=focal", "loss.weights=[1.0,1.0,2.0]")
    assert list(loss_fn.terms) == ["ce", "lovasz", "focal"]
    assert loss_fn.weights == [1.0, 1.0, 2.0]


def test_combination_weights_must_match_the_terms():
    with raises_user_error(r"loss.weights has 3 entries but loss.terms has 2 \(ce, dice\)"):
        build_loss("ce_dice", "loss.weights=[1,1,1]")


def test_losses_follow_the_module_to_another_dtype_and_keep_weights_out_of_checkpoints():
    loss_fn = CrossEntropyLoss(class_weights=[1.0, 2.0, 3.0, 4.0, 5.0])
    assert loss_fn.state_dict() == {}
    assert loss_fn.double().class_weights.dtype == torch.float64


def test_a_loss_built_without_train_refuses_unresolved_auto_weights():
    with raises_user_error("'auto' is turned into numbers by train"):
        instantiate(compose_config("train", ["loss=focal", "loss.class_weights=auto"]).loss)


@pytest.mark.parametrize(("option", "overrides"), [("ce", []), ("ohem_topk_ce", ["loss.top_k_percent=1.0"]), ("focal", [])])
def test_pixel_weights_count_a_pixel_that_many_times(option, overrides):
    """Panoptic-DeepLab weighs the pixels of small instances up: weight 3 counts a pixel as three copies of it
    (OHEM keeping every pixel, so that the copies do not change which pixels are kept)."""
    loss_fn = build_loss(option, *overrides)
    target = labels(ignored=0.0)
    logits = random_logits(target)
    weights = torch.ones(target.shape)
    weights[0, :4] = 3.0
    # The same pixels as one long image, the weighted ones appended twice more.
    copied_target = torch.cat([target.flatten(), target[0, :4].flatten().repeat(2)])[None, :, None]
    pixels = logits.permute(1, 0, 2, 3).flatten(1)
    copied_logits = torch.cat([pixels, logits[0, :, :4].flatten(1).repeat(1, 2)], dim=1)[None, :, :, None]
    assert loss_fn(logits, target, weights=weights).item() == pytest.approx(loss_fn(copied_logits, copied_target).item(), rel=1e-5)
    assert loss_fn(logits, target, weights=torch.ones(target.shape)).item() == pytest.approx(loss_fn(logits, target).item())
