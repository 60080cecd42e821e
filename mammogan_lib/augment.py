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
made for the global batch: :func:`mammogan_lib.distribute.global_batch_draw`). Works eagerly and inside
``tf.function`` (height and width must be static). TensorFlow is imported lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mammogan_lib.distribute import global_batch_draw

POLICIES: tuple[str, ...] = ("translation", "cutout", "brightness", "contrast")
"""Transform names a policy string may contain."""

BACKGROUND = -1.0
"""Value of the background in our images; fill of translation."""

CUTOUT_FILL = 0.0
"""Value inside the cutout square (mid-grey in [-1, 1]; see the module docstring)."""

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5
BRIGHTNESS_RANGE = (-0.5, 0.5)
CONTRAST_RANGE = (0.5, 1.5)


def parse_policy(policy: str) -> list[str]:
    """The transform names of ``policy`` (comma-separated, spaces ignored); ``ValueError`` if unknown."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    for name in names:
        if name not in POLICIES:
            raise ValueError(f"unknown DiffAugment policy {name!r}; allowed: {', '.join(POLICIES)}")
    return names


def diff_augment(images: Any, policy: str, seed: Any) -> Any:
    """Augment a batch ``(N, H, W, 1)`` in [-1, 1] with the transforms named in ``policy``.

    Returns a tensor of the same shape and dtype, in [-1, 1]. An empty policy returns ``images``
    itself, untouched. ``seed``: a shape ``(2,)`` int seed or a ``keras.random.SeedGenerator``.
    """
    names = parse_policy(policy)
    if not names:
        return images
    import tensorflow as tf

    x = tf.convert_to_tensor(images)
    seeds = tf.random.experimental.stateless_split(_stateless_seed(seed), num=len(names))
    for index, name in enumerate(names):
        x = TRANSFORMS[name](x, seeds[index])
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


def _per_image_uniform(x: Any, seed: Any, bounds: tuple[float, float]) -> Any:
    """``U(low, high)`` of shape ``(N, 1, 1, 1)`` in ``x``'s dtype."""
    import tensorflow as tf

    values = global_batch_draw(
        lambda shape: tf.random.stateless_uniform(tf.stack(shape), seed, minval=bounds[0], maxval=bounds[1]),
        [tf.shape(x)[0], 1, 1, 1],
    )
    return tf.cast(values, x.dtype)


def _brightness(x: Any, seed: Any) -> Any:
    """``x + U(-0.5, 0.5)`` per image, clipped to [-1, 1]."""
    import tensorflow as tf

    return tf.clip_by_value(x + _per_image_uniform(x, seed, BRIGHTNESS_RANGE), -1.0, 1.0)


def _contrast(x: Any, seed: Any) -> Any:
    """``(x - mean) * U(0.5, 1.5) + mean`` per image, clipped to [-1, 1]."""
    import tensorflow as tf

    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)  # (N, 1, 1, 1)
    return tf.clip_by_value((x - mean) * _per_image_uniform(x, seed, CONTRAST_RANGE) + mean, -1.0, 1.0)


def _random_offsets(x: Any, seed: Any, bounds: list[tuple[int, int]]) -> list[Any]:
    """One ``(N,)`` int32 offset per image and per ``(low, high)`` pair, uniform in ``[low, high)``."""
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


def _axis_mask(inside: Any, axis: int) -> Any:
    """Broadcast an ``(N, size)`` mask along ``axis`` (1: rows, 2: columns) to ``(N, H|1, W|1, 1)``."""
    return inside[:, :, None, None] if axis == 1 else inside[:, None, :, None]


def _shift_axis(x: Any, shift: Any, axis: int) -> Any:
    """Shift each image of ``x`` by ``shift[n]`` pixels along ``axis`` (1 or 2), filling with -1."""
    import tensorflow as tf

    size = x.shape[axis]
    source = tf.range(size)[None, :] - shift[:, None]  # (N, size): where each output pixel comes from
    inside = (source >= 0) & (source < size)
    moved = tf.gather(x, tf.clip_by_value(source, 0, size - 1), axis=axis, batch_dims=1)
    return tf.where(_axis_mask(inside, axis), moved, tf.cast(BACKGROUND, x.dtype))


def _translation(x: Any, seed: Any) -> Any:
    """Shift by up to 1/8 of the side along each axis, independently per image; background -1."""
    max_shifts = [int(x.shape[axis] * TRANSLATION_RATIO + 0.5) for axis in (1, 2)]
    shifts = _random_offsets(x, seed, [(-m, m + 1) for m in max_shifts])
    return _shift_axis(_shift_axis(x, shifts[0], axis=1), shifts[1], axis=2)


def _cutout_axis(x: Any, centre: Any, side: int, axis: int) -> Any:
    """``(N, size)`` mask of the positions along ``axis`` inside a ``side``-long span around ``centre``."""
    import tensorflow as tf

    offset = tf.range(x.shape[axis])[None, :] - (centre - side // 2)[:, None]  # (N, size)
    return _axis_mask((offset >= 0) & (offset < side), axis)


def _cutout(x: Any, seed: Any) -> Any:
    """Set a rectangle of half the image's height and width (clipped at the border) to 0."""
    import tensorflow as tf

    sides = [int(x.shape[axis] * CUTOUT_RATIO + 0.5) for axis in (1, 2)]
    # centre uniform over the image, upper bound as in the original (one more for even sides)
    centres = _random_offsets(
        x, seed, [(0, x.shape[a] + (1 - s % 2)) for a, s in zip((1, 2), sides, strict=True)]
    )
    hole = _cutout_axis(x, centres[0], sides[0], 1) & _cutout_axis(x, centres[1], sides[1], 2)
    return tf.where(hole, tf.cast(CUTOUT_FILL, x.dtype), x)  # hole: (N, H, W, 1)


TRANSFORMS: dict[str, Callable[[Any, Any], Any]] = {
    "translation": _translation,
    "cutout": _cutout,
    "brightness": _brightness,
    "contrast": _contrast,
}
