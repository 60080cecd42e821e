"""Differentiable augmentation (DiffAugment) for one-channel images in [-1, 1].

After Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training" (NeurIPS 2020;
mit-han-lab/data-efficient-gans, ``DiffAugment_tf.py``): the same random augmentation is applied to real
and generated images before the discriminator, in both the D and the G step, and gradients flow through
it to the generator. One entry point, :func:`diff_augment`, and a policy string such as
``"translation,cutout"``.

The transforms, adapted from the original (RGB, in [-1, 1]) to our images, where the background is -1
(black) and the breast is brighter:

``brightness``
    adds ``U(-0.5, 0.5)`` per image, in the [-1, 1] scale (a quarter of the range either way), as the
    original does; then clipped to [-1, 1].
``contrast``
    ``(x - m) * U(0.5, 1.5) + m`` with ``m`` the image's own mean (per image, over all pixels), as the
    original; then clipped to [-1, 1].
``translation``
    shifts each image by an integer number of pixels in ``[-S/8, S/8]`` (``S`` the side: height or
    width), independently per image and axis, as the original. Uncovered pixels become **-1**, our
    background (the original pads with 0, which here would be a grey band real images never have).
``cutout``
    sets one rectangle of half the height by half the width (clipped at the border; centre uniform over
    the image, as the original) to :data:`CUTOUT_FILL`, **0 = mid-grey**, as the original's zeros in
    [-1, 1]. Chosen over -1 because (a) it is the published, validated method and (b) a -1 hole is
    indistinguishable from the background, so where it overlaps the breast's edge it would change the
    breast's apparent shape instead of visibly hiding content; a grey hole is unambiguously an occluder.

The policy's transforms are applied in the order written. The randomness is stateless: ``seed`` is a
shape ``(2,)`` integer seed (as ``tf.random.stateless_uniform`` takes; e.g. fold a step counter into a base
seed with ``tf.random.experimental.stateless_fold_in``) or a ``keras.random.SeedGenerator``, so the same
seed gives the same augmentation, also when a multi-GPU step splits the batch over replicas (the draws are
made for the global batch: :func:`mammogan_lib.gan.distribute.global_batch_draw`). Works eagerly and inside
``tf.function`` (height and width must be static). TensorFlow is imported lazily.

The jax and torch backends draw the same distributions on the host (:func:`augment_draws`, from numpy's
generator of the step). Every backend applies them with :func:`apply_augment`, written in ``keras.ops``, so
the same random values give the same images on all three.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from mammogan_lib.core.config import parse_policy
from mammogan_lib.core.frameworks import import_keras
from mammogan_lib.gan.distribute import global_batch_draw

BACKGROUND = -1.0
"""Value of the background in our images; fill of translation."""

CUTOUT_FILL = 0.0
"""Value inside the cutout square (mid-grey in [-1, 1]; see the module docstring)."""

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
BRIGHTNESS_RANGE = (-0.5, 0.5)
CONTRAST_RANGE = (0.5, 1.5)


def diff_augment(images: Any, policy: str, seed: Any) -> Any:
    """Augment a batch ``(N, H, W, 1)`` in [-1, 1] with the transforms named in ``policy`` (TensorFlow).

    Returns a tensor of the same shape and dtype, in [-1, 1]. An empty policy returns ``images``
    itself, untouched. ``seed``: a shape ``(2,)`` int seed or a ``keras.random.SeedGenerator``. The draws
    are TensorFlow's stateless ones; the transforms themselves are :func:`apply_augment`'s.
    """
    names = parse_policy(policy)
    if not names:
        return images
    import tensorflow as tf

    x = tf.convert_to_tensor(images)
    seeds = tf.random.experimental.stateless_split(_stateless_seed(seed), num=len(names))
    draws = [DRAWS[name](x, seeds[index]) for index, name in enumerate(names)]
    return apply_augment(x, names, draws)


def augment_draws(names: Sequence[str], batch: int, size: tuple[int, int], rng: Any) -> list[Any]:
    """The random values of ``names``'s transforms for ``batch`` images of ``size`` ``(H, W)``, drawn on
    the host from the numpy ``rng`` (the jax and torch backends): what :func:`apply_augment` takes, with
    the distributions of the TensorFlow draws."""
    draws: list[Any] = []
    for name in names:
        if name in UNIFORM_RANGES:
            low, high = UNIFORM_RANGES[name]
            draws.append(rng.uniform(low, high, (batch, 1, 1, 1)).astype(np.float32))
        else:
            draws.append(
                [rng.integers(low, high, batch).astype(np.int32) for low, high in OFFSET_BOUNDS[name](size)]
            )
    return draws


def apply_augment(x: Any, names: Sequence[str], draws: Sequence[Any]) -> Any:
    """Apply ``names``'s transforms in turn with their random values ``draws`` (``keras.ops``: the same on
    every backend): a per-image ``(N, 1, 1, 1)`` value for brightness and contrast, one ``(N,)`` int32
    offset per axis for translation and cutout."""
    for name, draw in zip(names, draws, strict=True):
        x = APPLY[name](x, draw)
    return x


def _stateless_seed(seed: Any) -> Any:
    """A shape ``(2,)`` int64 tensor from a seed pair or a ``keras.random.SeedGenerator``."""
    import tensorflow as tf

    if hasattr(seed, "next") and hasattr(seed, "state"):  # keras.random.SeedGenerator
        seed = seed.next()
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    if seed.shape != (2,):
        raise ValueError(f"seed must have shape (2,), got {seed.shape}")
    return seed


def _translation_bounds(size: tuple[int, int]) -> list[tuple[int, int]]:
    """Shifts up to 1/8 of the side along each axis: ``[low, high)`` per axis."""
    max_shifts = [int(side * TRANSLATION_RATIO + 0.5) for side in size]
    return [(-m, m + 1) for m in max_shifts]


def _cutout_sides(size: tuple[int, int]) -> list[int]:
    return [int(side * CUTOUT_RATIO + 0.5) for side in size]


def _cutout_bounds(size: tuple[int, int]) -> list[tuple[int, int]]:
    """The hole's centre, uniform over the image, upper bound as in the original (one more for even
    sides)."""
    return [(0, side + (1 - hole % 2)) for side, hole in zip(size, _cutout_sides(size), strict=True)]


UNIFORM_RANGES: dict[str, tuple[float, float]] = {"brightness": BRIGHTNESS_RANGE, "contrast": CONTRAST_RANGE}
OFFSET_BOUNDS: dict[str, Callable[[tuple[int, int]], list[tuple[int, int]]]] = {
    "translation": _translation_bounds,
    "cutout": _cutout_bounds,
}


def _image_size(x: Any) -> tuple[int, int]:
    return int(x.shape[1]), int(x.shape[2])


def _per_image_uniform(x: Any, seed: Any, bounds: tuple[float, float]) -> Any:
    """``U(low, high)`` of shape ``(N, 1, 1, 1)`` in ``x``'s dtype (TensorFlow's stateless draw)."""
    import tensorflow as tf

    values = global_batch_draw(
        lambda shape: tf.random.stateless_uniform(tf.stack(shape), seed, minval=bounds[0], maxval=bounds[1]),
        [tf.shape(x)[0], 1, 1, 1],
    )
    return tf.cast(values, x.dtype)


def _random_offsets(x: Any, seed: Any, bounds: list[tuple[int, int]]) -> list[Any]:
    """One ``(N,)`` int32 offset per image and per ``(low, high)`` pair, uniform in ``[low, high)``
    (TensorFlow's stateless draw)."""
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed, num=len(bounds))
    return [
        global_batch_draw(
            lambda shape, seed=seeds[i], low=low, high=high: tf.random.stateless_uniform(
                tf.stack(shape), seed, minval=low, maxval=high, dtype=tf.int32
            ),
            [tf.shape(x)[0]],
        )
        for i, (low, high) in enumerate(bounds)
    ]


DRAWS: dict[str, Callable[[Any, Any], Any]] = {
    **{
        name: lambda x, seed, b=bounds: _per_image_uniform(x, seed, b)
        for name, bounds in UNIFORM_RANGES.items()
    },
    **{
        name: lambda x, seed, b=bounds: _random_offsets(x, seed, b(_image_size(x)))
        for name, bounds in OFFSET_BOUNDS.items()
    },
}
"""Each transform's TensorFlow draw ``(images, seed) -> its random values``."""


def _brightness(x: Any, shift: Any) -> Any:
    """``x + U(-0.5, 0.5)`` per image, clipped to [-1, 1]."""
    ops = import_keras().ops
    return ops.clip(x + ops.cast(shift, x.dtype), -1.0, 1.0)


def _contrast(x: Any, factor: Any) -> Any:
    """``(x - mean) * U(0.5, 1.5) + mean`` per image, clipped to [-1, 1]."""
    ops = import_keras().ops
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)  # (N, 1, 1, 1)
    return ops.clip((x - mean) * ops.cast(factor, x.dtype) + mean, -1.0, 1.0)


def _axis_mask(inside: Any, axis: int) -> Any:
    """Broadcast an ``(N, size)`` mask along ``axis`` (1: rows, 2: columns) to ``(N, H|1, W|1, 1)``."""
    return inside[:, :, None, None] if axis == 1 else inside[:, None, :, None]


def _shift_axis(x: Any, shift: Any, axis: int) -> Any:
    """Shift each image of ``x`` by ``shift[n]`` pixels along ``axis`` (1 or 2), filling with -1."""
    ops = import_keras().ops
    size = x.shape[axis]
    source = ops.arange(size, dtype="int32")[None, :] - ops.cast(shift, "int32")[:, None]  # (N, size)
    inside = ops.logical_and(source >= 0, source < size)
    rows = ops.broadcast_to(_axis_mask(ops.clip(source, 0, size - 1), axis), ops.shape(x))
    moved = ops.take_along_axis(x, rows, axis=axis)
    return ops.where(_axis_mask(inside, axis), moved, ops.cast(BACKGROUND, x.dtype))


def _translation(x: Any, shifts: Sequence[Any]) -> Any:
    """Shift by up to 1/8 of the side along each axis, independently per image; background -1."""
    return _shift_axis(_shift_axis(x, shifts[0], axis=1), shifts[1], axis=2)


def _cutout_axis(x: Any, centre: Any, side: int, axis: int) -> Any:
    """``(N, size)`` mask of the positions along ``axis`` inside a ``side``-long span around ``centre``."""
    ops = import_keras().ops
    offset = (
        ops.arange(x.shape[axis], dtype="int32")[None, :] - (ops.cast(centre, "int32") - side // 2)[:, None]
    )
    return _axis_mask(ops.logical_and(offset >= 0, offset < side), axis)


def _cutout(x: Any, centres: Sequence[Any]) -> Any:
    """Set a rectangle of half the image's height and width (clipped at the border) to 0."""
    ops = import_keras().ops
    sides = _cutout_sides(_image_size(x))
    hole = ops.logical_and(_cutout_axis(x, centres[0], sides[0], 1), _cutout_axis(x, centres[1], sides[1], 2))
    return ops.where(hole, ops.cast(CUTOUT_FILL, x.dtype), x)  # hole: (N, H, W, 1)


APPLY: dict[str, Callable[[Any, Any], Any]] = {
    "translation": _translation,
    "cutout": _cutout,
    "brightness": _brightness,
    "contrast": _contrast,
}
"""Each transform ``(images, its random values) -> images``."""
