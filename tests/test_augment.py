"""DiffAugment for one-channel images in [-1, 1]: shape, range, seeding, gradients, -1 background."""

from __future__ import annotations

import numpy as np
import pytest

from mammogan_lib.core.config import AUGMENT_POLICIES as POLICIES
from mammogan_lib.core.frameworks import import_keras
from mammogan_lib.gan.augment import APPLY, DRAWS, diff_augment

keras = import_keras()
import tensorflow as tf  # noqa: E402

ALL = ",".join(POLICIES)
POLICY_CASES = [*POLICIES, ALL]


def image_batch(n: int = 4, size: int = 32, seed: int = 0) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 1)).astype("float32"))


@pytest.mark.parametrize("policy", POLICY_CASES)
def test_shape_dtype_and_range_are_kept(policy):
    images = image_batch()
    augmented = diff_augment(images, policy, (1, 2))
    assert augmented.shape == images.shape and augmented.dtype == images.dtype
    values = augmented.numpy()
    assert values.min() >= -1.0 and values.max() <= 1.0
    assert not np.array_equal(values, images.numpy())


def test_bfloat16_images_keep_their_dtype():
    images = tf.cast(image_batch(), tf.bfloat16)
    assert diff_augment(images, ALL, (1, 2)).dtype == tf.bfloat16


@pytest.mark.parametrize("policy", ["", " ", ","])
def test_empty_policy_returns_the_input_itself(policy):
    images = image_batch()
    assert diff_augment(images, policy, (1, 2)) is images


@pytest.mark.parametrize("policy", POLICY_CASES)
def test_same_seed_same_output_other_seed_other_output(policy):
    images = image_batch(n=8)
    first = diff_augment(images, policy, (5, 6)).numpy()
    np.testing.assert_array_equal(first, diff_augment(images, policy, tf.constant([5, 6])).numpy())
    assert not np.array_equal(first, diff_augment(images, policy, (5, 7)).numpy())


def test_seed_generator_is_accepted_and_advances():
    images = image_batch()
    generator = keras.random.SeedGenerator(11)
    first = diff_augment(images, ALL, generator).numpy()
    assert not np.array_equal(first, diff_augment(images, ALL, generator).numpy())
    again = diff_augment(images, ALL, keras.random.SeedGenerator(11)).numpy()
    np.testing.assert_array_equal(first, again)


def test_tf_function_matches_eager():
    images = image_batch()
    compiled = tf.function(lambda x, seed: diff_augment(x, ALL, seed))
    eager = diff_augment(images, ALL, (3, 4)).numpy()
    np.testing.assert_array_equal(compiled(images, tf.constant([3, 4])).numpy(), eager)


def test_unknown_policy_is_refused_naming_it_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"'color'.*translation, cutout, brightness, contrast"):
        diff_augment(image_batch(), "translation,color", (1, 2))


@pytest.mark.parametrize("policy", POLICY_CASES)
def test_gradients_flow_to_the_input(policy):
    images = tf.Variable(image_batch() * 0.5)  # inside (-1, 1): clipping does not zero every gradient
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(diff_augment(images, policy, (1, 2)) ** 2)
    gradient = tape.gradient(loss, images)
    assert gradient is not None
    assert np.isfinite(gradient.numpy()).all() and np.abs(gradient.numpy()).sum() > 0


def test_translation_fills_with_background_minus_one():
    ones = tf.ones((16, 32, 32, 1))
    shifted = diff_augment(ones, "translation", (1, 2)).numpy()
    assert set(np.unique(shifted)) <= {-1.0, 1.0}
    uncovered = (shifted == -1).reshape(16, -1).sum(axis=1)
    assert uncovered.max() > 0  # some image moved
    rows = (shifted == -1).all(axis=(2, 3)).sum(axis=1)
    cols = (shifted == -1).all(axis=(1, 3)).sum(axis=1)
    assert rows.max() <= 4 and cols.max() <= 4  # at most 32/8 pixels per axis


def test_cutout_fills_a_half_size_square_with_mid_grey():
    ones = tf.ones((16, 32, 32, 1))
    cut = diff_augment(ones, "cutout", (1, 2)).numpy()
    assert set(np.unique(cut)) <= {0.0, 1.0}
    holes = (cut == 0).reshape(16, -1).sum(axis=1)
    assert holes.max() == 16 * 16 and holes.min() >= 1  # clipped at the border, never empty


def test_brightness_and_contrast_are_per_image():
    flat = tf.fill((8, 8, 8, 1), 0.0)
    brightened = diff_augment(flat, "brightness", (1, 2)).numpy()
    assert (brightened == brightened[:, :1, :1, :]).all()  # one shift per image
    assert np.abs(brightened[:, 0, 0, 0]).max() <= 0.5 and len(np.unique(brightened)) > 1
    ramp = tf.constant(np.linspace(-0.5, 0.5, 64, dtype="float32").reshape(1, 8, 8, 1).repeat(8, axis=0))
    contrasted = diff_augment(ramp, "contrast", (1, 2)).numpy()
    np.testing.assert_allclose(contrasted.mean(axis=(1, 2, 3)), 0.0, atol=1e-6)  # around the mean
    ratio = contrasted.std(axis=(1, 2, 3)) / ramp.numpy().std(axis=(1, 2, 3))
    assert ((ratio >= 0.5) & (ratio <= 1.5)).all()


def test_every_policy_the_parameter_accepts_is_implemented_and_no_other():
    assert set(DRAWS) == set(APPLY) == set(POLICIES)
