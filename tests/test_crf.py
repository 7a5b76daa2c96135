"""Dense CRF post-processing: the exact method against a brute-force mean-field, the fast ones against the exact."""

from __future__ import annotations

import functools
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import seglab.inference.crf as crf_module
from seglab.inference.crf import DenseCRF
from seglab.inference.permutohedral import LatticeTooLarge, PermutohedralLattice
from seglab.runtime.errors import UserError

# Parameters under which both kernels reach across a tiny image and matter.
TINY_PARAMS = dict(w1=4.0, theta_alpha=5.0, theta_beta=30.0, w2=3.0, theta_gamma=2.0)
# DeepLab v2's released ResNet-101 PASCAL VOC values, the sharper colour kernel of the two defaults.
DEEPLAB_V2 = dict(w1=4.0, theta_alpha=67.0, theta_beta=3.0, w2=3.0, theta_gamma=1.0)
# The lattice (and pydensecrf, which uses one too) against the exact method on a natural-looking scene (see
# scene()), per parameter preset: the refined labels agree on at least this share of pixels, and the refined
# probabilities differ by at most this much on average. DeepLab v2's colour kernel (theta_beta = 3) is narrower
# than the scene's colour noise (12), which leaves each pixel fewer similar neighbours and the lattice a larger
# error.
PRESETS = {
    "deeplab_v1": ({}, 0.995, 0.002),
    "deeplab_v2": (DEEPLAB_V2, 0.98, 0.015),
}


def brute_force_mean_field(probs: np.ndarray, image: np.ndarray, crf: DenseCRF) -> np.ndarray:
    """Mean-field in the fully connected CRF written out with full N x N kernel matrices, in float64."""
    classes, height, width = probs.shape
    y, x = np.mgrid[0:height, 0:width]
    position = np.stack([x.ravel(), y.ravel()], axis=1).astype(float)
    colour = image.reshape(3, -1).T.astype(float)
    position_sq = ((position[:, None] - position[None]) ** 2).sum(-1)
    colour_sq = ((colour[:, None] - colour[None]) ** 2).sum(-1)
    appearance = np.exp(-position_sq / (2 * crf.theta_alpha**2) - colour_sq / (2 * crf.theta_beta**2))
    smoothness = np.exp(-position_sq / (2 * crf.theta_gamma**2))
    unary = -np.log(probs.reshape(classes, -1).T)
    q = np.exp(-unary)
    q /= q.sum(1, keepdims=True)
    for _ in range(crf.iterations):
        logits = -unary.copy()
        for weight, kernel in ((crf.w1, appearance), (crf.w2, smoothness)):
            row_sums = kernel.sum(1, keepdims=True)
            if crf.normalization == "pixel":
                logits += weight * (kernel @ q) / row_sums
            else:
                logits += weight * (kernel @ (q / np.sqrt(row_sums))) / np.sqrt(row_sums)
        q = np.exp(logits - logits.max(1, keepdims=True))
        q /= q.sum(1, keepdims=True)
    return q.T.reshape(classes, height, width)


def random_batch(batch: int, classes: int, height: int, width: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    probs = torch.softmax(2 * torch.randn(batch, classes, height, width, generator=generator), dim=1)
    images = torch.randint(0, 256, (batch, 3, height, width), generator=generator, dtype=torch.uint8)
    return probs, images


def scene(height: int = 36, width: int = 48, seed: int = 1):
    """A disc, a rectangle and a background in three colours with noise, and a noisy network output: the
    ground truth, the uint8 image ``(1, 3, H, W)`` and softmax probabilities ``(1, 3, H, W)``."""
    generator = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    labels = torch.zeros(height, width, dtype=torch.long)
    labels[(x - width * 0.35) ** 2 + (y - height * 0.5) ** 2 < (height * 0.3) ** 2] = 1
    labels[(x > width * 0.65) & (y > height * 0.2)] = 2
    palette = torch.tensor([[200.0, 60, 50], [40, 170, 70], [30, 40, 190]])
    image = palette[labels].permute(2, 0, 1) + 12 * torch.randn(3, height, width, generator=generator)
    image = image.clamp(0, 255).round().to(torch.uint8)
    one_hot = torch.nn.functional.one_hot(labels, 3).permute(2, 0, 1).float()
    probs = torch.softmax(1.5 * one_hot + 1.2 * torch.randn(3, height, width, generator=generator), dim=0)
    return labels, image[None], probs[None]


@pytest.mark.parametrize("normalization", ["pixel", "symmetric"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exact_method_equals_a_brute_force_mean_field(normalization, dtype):
    probs, images = random_batch(batch=2, classes=4, height=9, width=13)
    crf = DenseCRF(**TINY_PARAMS, normalization=normalization, method="exact")
    refined = crf(probs.to(dtype), images)
    assert refined.dtype == dtype and refined.shape == probs.shape
    for index in range(2):  # each image of the batch on its own
        expected = brute_force_mean_field(probs[index].double().numpy(), images[index].numpy(), crf)
        np.testing.assert_allclose(refined[index].double().numpy(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("height, width", [(1, 1), (1, 30), (40, 3)])  # one pixel, one row, three columns
def test_exact_method_equals_brute_force_on_degenerate_image_shapes_and_after_one_iteration(height, width):
    probs, images = random_batch(batch=1, classes=3, height=height, width=width, seed=3)
    crf = DenseCRF(**TINY_PARAMS, iterations=1, method="exact")
    expected = brute_force_mean_field(probs[0].double().numpy(), images[0].numpy(), crf)
    np.testing.assert_allclose(crf(probs.double(), images)[0].numpy(), expected, atol=1e-7, rtol=0)


def test_exact_method_without_the_cached_kernel_gives_the_same_result(monkeypatch):
    probs, images = random_batch(batch=1, classes=4, height=9, width=13)
    crf = DenseCRF(**TINY_PARAMS, method="exact")
    cached = crf(probs, images)
    monkeypatch.setattr(crf_module, "_CACHED_KERNEL_ENTRIES", 0)
    monkeypatch.setattr(crf_module, "_CHUNK_ENTRIES", 117 * 50)  # 50 of the 117 pixels' rows a chunk
    torch.testing.assert_close(crf(probs, images), cached, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["exact", "permutohedral", "pydensecrf"])
def test_crf_snaps_a_noisy_prediction_to_the_colour_edge(method):
    # Two colours split at column 13; the network is right on about 70 % of the pixels, at random.
    height, width, edge = 24, 32, 13
    generator = torch.Generator().manual_seed(0)
    labels = torch.zeros(height, width, dtype=torch.long)
    labels[:, edge:] = 1
    blue, red = torch.tensor([30, 60, 200])[:, None, None], torch.tensor([210, 50, 40])[:, None, None]
    image = torch.where(labels.bool(), blue, red)
    image = (image + 5 * torch.randn(3, height, width, generator=generator)).clamp(0, 255).to(torch.uint8)
    noise = torch.randn(2, height, width, generator=generator)
    probs = torch.softmax(torch.nn.functional.one_hot(labels, 2).permute(2, 0, 1) + 1.6 * noise, dim=0)
    before = (probs.argmax(0) == labels).float().mean().item()
    assert 0.6 < before < 0.8
    refined = DenseCRF(method=method)(probs[None], image[None])[0].argmax(0)
    assert torch.equal(refined, labels)  # every pixel, the columns beside the edge included


@functools.cache
def exact_on_scene(preset: str, normalization: str) -> torch.Tensor:
    _, image, probs = scene()
    return DenseCRF(**PRESETS[preset][0], normalization=normalization, method="exact")(probs, image)


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("method", ["permutohedral", "pydensecrf"])
@pytest.mark.parametrize("normalization", ["pixel", "symmetric"])
def test_fast_methods_match_the_exact_one_within_the_stated_tolerance(preset, method, normalization):
    labels, image, probs = scene()
    params, min_agreement, max_mean_error = PRESETS[preset]
    exact = exact_on_scene(preset, normalization)
    fast = DenseCRF(**params, normalization=normalization, method=method)(probs, image)
    assert (fast.argmax(1) == exact.argmax(1)).float().mean().item() >= min_agreement
    assert (fast - exact).abs().mean().item() <= max_mean_error
    # ... and the CRF does its job: from about 70 % of the pixels right to nearly all.
    assert (probs.argmax(1) == labels).float().mean() < 0.75
    assert (fast.argmax(1)[0] == labels).float().mean() > 0.95


@pytest.mark.parametrize("normalization", ["pixel", "symmetric"])
def test_torch_lattice_reproduces_krahenbuhls_code(normalization):
    # pydensecrf runs the authors' C++ lattice on both kernels, as the permutohedral method does in torch.
    _, image, probs = scene()
    random_probs, random_images = random_batch(batch=1, classes=4, height=20, width=30)
    cases = [(DEEPLAB_V2, probs, image, 1e-3), (TINY_PARAMS, random_probs, random_images, 2e-3)]
    for params, probs, image, tolerance in cases:
        ours = DenseCRF(**params, normalization=normalization, method="permutohedral")(probs, image)
        theirs = DenseCRF(**params, normalization=normalization, method="pydensecrf")(probs, image)
        assert (ours - theirs).abs().max().item() <= tolerance


def test_lattice_filter_approximates_the_normalised_gaussian():
    _, image, _ = scene(seed=2)
    features = crf_module._pixel_features(image[0], 20.0, 10.0, 1.0)[:, :5]
    values = torch.softmax(torch.randn(features.shape[0], 5, generator=torch.Generator().manual_seed(0)), dim=1)
    kernel = torch.exp(-0.5 * torch.cdist(features, features, compute_mode="donot_use_mm_for_euclid_dist") ** 2)
    exact = (kernel @ values.double()) / kernel.sum(1, keepdim=True)
    lattice = PermutohedralLattice(features)
    approximate = lattice.filter(values) / lattice.filter(torch.ones(features.shape[0], 1))
    assert (approximate.double() - exact).abs().mean() < 0.005


def test_lattice_keeps_isolated_points_to_themselves_and_refuses_an_overflowing_hash():
    far_apart = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    lattice = PermutohedralLattice(far_apart)
    values = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    torch.testing.assert_close(lattice.filter(values) / lattice.filter(torch.ones(3, 1)), values)
    with pytest.raises(LatticeTooLarge):
        PermutohedralLattice(torch.tensor([[0.0] * 5, [1e5] * 5]))


def test_a_kernel_too_narrow_for_the_lattice_is_one_clear_error():
    probs, images = random_batch(batch=1, classes=2, height=8, width=8)
    images[0, :, 0, 0], images[0, :, -1, -1] = 0, 255
    with pytest.raises(UserError, match=r"theta_alpha=1e-05, theta_beta=1e-05, .* too small .* method 'exact'"):
        DenseCRF(theta_alpha=1e-5, theta_beta=1e-5, method="permutohedral")(probs, images)


@pytest.mark.parametrize("method", ["exact", "permutohedral", "pydensecrf"])
def test_zero_kernel_weights_return_the_network_probabilities(method):
    probs, images = random_batch(batch=2, classes=3, height=10, width=12)
    refined = DenseCRF(w1=0, w2=0, method=method)(probs, images)
    torch.testing.assert_close(refined, probs, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["exact", "permutohedral", "pydensecrf"])
def test_an_empty_batch_and_a_single_class(method):
    crf = DenseCRF(method=method)
    empty = crf(torch.zeros(0, 3, 4, 4), torch.zeros(0, 3, 4, 4, dtype=torch.uint8))
    assert empty.shape == (0, 3, 4, 4)
    probs, images = random_batch(batch=1, classes=1, height=5, width=6)
    torch.testing.assert_close(crf(probs, images), torch.ones(1, 1, 5, 6))


@pytest.mark.parametrize("method", ["exact", "permutohedral"])
def test_images_of_a_batch_are_refined_independently(method):
    probs, images = random_batch(batch=2, classes=3, height=12, width=16, seed=5)
    crf = DenseCRF(**TINY_PARAMS, method=method)
    together = crf(probs, images)
    for index in range(2):
        alone = crf(probs[index : index + 1], images[index : index + 1])
        torch.testing.assert_close(together[index : index + 1], alone)


def test_auto_method_is_exact_up_to_exact_max_pixels():
    crf = DenseCRF()
    assert crf.method_for(32, 32) == "exact"  # 1024 pixels, the default limit
    assert crf.method_for(32, 33) == "permutohedral"
    assert DenseCRF(exact_max_pixels=0).method_for(1, 1) == "permutohedral"
    assert DenseCRF(method="exact").method_for(1024, 2048) == "exact"


def test_defaults_are_deeplab_v1_largefov():
    crf = DenseCRF()
    assert (crf.iterations, crf.w1, crf.theta_alpha, crf.theta_beta, crf.w2, crf.theta_gamma) == (10, 4, 121, 5, 3, 3)
    assert (crf.normalization, crf.method) == ("pixel", "auto")


@pytest.mark.parametrize(
    "option, value",
    [
        ("iterations", 0),
        ("iterations", -1),
        ("iterations", 2.5),
        ("iterations", True),
        ("theta_alpha", 0),
        ("theta_beta", -1.0),
        ("theta_gamma", 0.0),
        ("theta_alpha", float("nan")),
        ("theta_beta", "5"),
        ("w1", -0.1),
        ("w2", float("inf")),
        ("normalization", "none"),
        ("method", "gpu"),
        ("exact_max_pixels", -1),
    ],
)
def test_bad_options_are_one_clear_error_naming_the_option(option, value):
    with pytest.raises(UserError, match=option) as caught:
        DenseCRF(**{option: value})
    assert "\n" not in str(caught.value)


def test_smallest_allowed_options_are_accepted():
    crf = DenseCRF(iterations=1, theta_alpha=1e-3, theta_beta=1e-3, theta_gamma=1e-3, w1=0, w2=0, exact_max_pixels=0)
    assert crf.iterations == 1


def test_missing_pydensecrf_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pydensecrf", None)
    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(UserError, match=r"pip install 'seglab\[crf\]'"):
        DenseCRF(method="pydensecrf")
    probs, images = random_batch(batch=1, classes=2, height=4, width=4)
    assert DenseCRF()(probs, images).shape == probs.shape  # the torch methods need nothing extra


def test_inputs_are_checked():
    probs, images = random_batch(batch=1, classes=2, height=4, width=5)
    crf = DenseCRF()
    with pytest.raises(ValueError, match="uint8"):
        crf(probs, images.float())
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        crf(probs, images[:, :, :3])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        crf(probs[0], images)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["exact", "permutohedral"])
def test_torch_methods_give_the_same_result_on_the_gpu(method):
    _, image, probs = scene()
    crf = DenseCRF(method=method)
    on_gpu = crf(probs.cuda(), image.cuda())
    assert on_gpu.is_cuda
    torch.testing.assert_close(on_gpu.cpu(), crf(probs, image), atol=1e-4, rtol=0)


def test_speed_benchmark_runs_on_a_small_image(monkeypatch, capsys):
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "crf_speed.py"
    threads = torch.get_num_threads()
    arguments = ["--height", "24", "--width", "40", "--classes", "3", "--threads", str(threads)]
    monkeypatch.setattr(sys, "argv", [str(script), *arguments])
    runpy.run_path(str(script), run_name="__main__")
    assert torch.get_num_threads() == threads
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in printed.splitlines() if line.startswith(("exact", "perm"))}
    assert rows == {"exact": "24x40", "permutohedral": "24x40"}
    assert "agree on 100.00 % of the pixels" in printed
