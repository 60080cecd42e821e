"""The GAN on each Keras backend: the same step, the same DiffAugment, exact resume on each, and a
checkpoint's generator on every backend. Each backend runs in its own process (tests/backend_worker.py:
Keras picks its backend once, at import); this process only compares the arrays they write.

Tolerances. Given the same weights and the same draws, the backends' losses agree to float32 rounding.
After one Adam step a weight moves by about ``lr * sign(gradient)``; where a gradient is zero up to
rounding (a convolution's bias before BatchNorm, which BatchNorm cancels; a few of exp7's generator weights)
the sign is rounding noise, so those weights may differ by up to ``2 * lr``. :data:`WEIGHT_ATOL` allows a
quarter of the learning rate; at most :data:`SIGN_NOISE_SHARE` of a weight's elements may be further apart,
and none by more than ``2 * lr``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT

# a fresh process per backend and task, jax's XLA compiles among them: minutes, so make test-slow
pytestmark = pytest.mark.slow

BACKENDS = ("tensorflow", "jax", "torch")
LEARNING_RATE = 1e-4  # the trainer's default lr_g; lr_d is 1e-5
WEIGHT_ATOL = LEARNING_RATE / 4
LOSS_RTOL = 1e-5
SIGN_NOISE_SHARE = 5e-3  # exp7: 0.14 % of one kernel measured
FORWARD_ATOL = 5e-5  # the StyleGAN-like generator's instance norms: float32 reductions in another order

JAX_MISSING = importlib.util.find_spec("jax") is None
needs_jax = pytest.mark.skipif(JAX_MISSING, reason="the jax extra is not installed: pip install -e '.[jax]'")
BACKEND_PARAMS = [pytest.param(b, marks=needs_jax) if b == "jax" else b for b in BACKENDS]


def run_worker(backend: str, task: str, folder: Path) -> dict[str, np.ndarray]:
    """Run one backend's task in a fresh process; its arrays."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "tests" / "backend_worker.py"), backend, task, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, f"{backend} {task}:\n{done.stderr[-3000:]}"
    with np.load(folder / f"{task}_{backend}.npz") as arrays:
        return dict(arrays)


@pytest.fixture(scope="module")
def step_results(tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    folder = tmp_path_factory.mktemp("backend_steps")
    # tensorflow first: it writes the weights and the draws the others start from
    return {b: run_worker(b, "step", folder) for b in BACKENDS if b != "jax" or not JAX_MISSING}


@pytest.mark.parametrize("backend", [b for b in BACKEND_PARAMS if b != "tensorflow"])
def test_one_step_gives_tensorflows_losses_and_weights_from_the_same_weights_and_draws(backend, step_results):
    reference, other = step_results["tensorflow"], step_results[backend]
    assert sorted(reference) == sorted(other)
    cases = {key.split("/")[0] for key in reference if not key.startswith("forward/")}
    assert cases == {
        "plain",
        "augmented_r1_lecam",
        "conditional",
        "deep",
        "spectral_norm",
        "moving_average",
        "fastgan",
    }
    assert any(key.startswith("moving_average/generator_ema/") for key in reference)
    for key, expected in reference.items():
        if key.endswith("/losses"):
            np.testing.assert_allclose(other[key], expected, rtol=LOSS_RTOL, err_msg=key)
            assert np.all(np.isfinite(expected)) and expected[0] > 0
        elif key.endswith("/largest_change"):  # the weights compared are after a step that moved them
            assert expected > 10 * WEIGHT_ATOL and other[key] > 10 * WEIGHT_ATOL, key
        elif key.startswith("forward/"):
            np.testing.assert_allclose(other[key], expected, atol=FORWARD_ATOL, err_msg=key)
        else:
            assert_same_weights(other[key], expected, key)


def assert_same_weights(actual: np.ndarray, expected: np.ndarray, key: str) -> None:
    """Equal within :data:`WEIGHT_ATOL`, but for rounding's sign flips (see the module doc)."""
    difference = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    apart = difference > WEIGHT_ATOL
    assert apart.mean() <= SIGN_NOISE_SHARE, f"{key}: {apart.sum()} of {apart.size} elements apart"
    assert difference.max() <= 2 * LEARNING_RATE * (1 + 1e-3), f"{key}: {difference.max()} apart"


@pytest.mark.parametrize("backend", [b for b in BACKEND_PARAMS if b != "tensorflow"])
def test_diff_augment_applies_the_same_values_alike_on_every_backend(backend, tmp_path):
    reference = run_worker("tensorflow", "augment", tmp_path)
    other = run_worker(backend, "augment", tmp_path)
    assert sorted(reference) == ["brightness", "contrast", "cutout", "translation"]
    for name, expected in reference.items():
        np.testing.assert_allclose(other[name], expected, atol=1e-6, err_msg=name)
    # the translation's uncovered pixels are the background, -1, and the cutout's hole mid-grey, 0
    assert (reference["translation"] == -1.0).any() and (reference["cutout"] == 0.0).any()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_kill_and_resume_equals_an_uninterrupted_run_on_each_backend(backend, tmp_path):
    results = run_worker(backend, "resume", tmp_path)
    assert len(results["uninterrupted"]) == 3
    np.testing.assert_array_equal(results["resumed"], results["uninterrupted"])
    # the generator's moving average resumed too, and it is not G
    np.testing.assert_array_equal(results["average_resumed"], results["average_uninterrupted"])
    assert float(results["average_distance_to_generator"]) > 1e-4


def test_a_checkpoints_generator_gives_the_same_images_on_every_backend(tmp_path):
    trained = [b for b in ("tensorflow", "jax") if b != "jax" or not JAX_MISSING]
    own = {b: run_worker(b, "checkpoint", tmp_path)["images"] for b in trained}
    for backend in [b for b in BACKENDS if b != "jax" or not JAX_MISSING]:
        loaded = run_worker(backend, "generate", tmp_path)
        assert sorted(loaded) == sorted(trained)
        for trained_on, images in own.items():
            np.testing.assert_allclose(loaded[trained_on], images, atol=FORWARD_ATOL, err_msg=trained_on)


@pytest.mark.parametrize("backend", [b for b in BACKEND_PARAMS if b != "torch"])
def test_float16_steps_are_loss_scaled_and_finite(backend, tmp_path):
    # torch's CPU convolutions have no float16 backward ("slow_conv2d: grad_weight must be contiguous"):
    # its float16 step runs on a GPU only (the GPU check), where float16 is what mixed precision means
    results = run_worker(backend, "float16", tmp_path)
    assert str(results["compute_dtype"]) == "float16"
    assert results["losses"].shape == (3, 4) and np.all(np.isfinite(results["losses"]))
    assert float(results["dynamic_scale"]) == 2.0**15 and int(results["step_counter"]) == 3


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_a_progressive_run_killed_mid_fade_resumes_exactly_on_each_backend(backend, tmp_path):
    results = run_worker(backend, "progressive", tmp_path)
    assert len(results["uninterrupted"]) == 6
    np.testing.assert_array_equal(results["resumed"], results["uninterrupted"])
    np.testing.assert_array_equal(results["average_resumed"], results["average_uninterrupted"])
