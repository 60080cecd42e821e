"""The generator's exponential moving average (``g_ema_decay``), updated after every step on each backend.

A second generator, ``G_ema``, starts as a copy of G and after training step ``t`` moves towards it::

    G_ema <- d_t * G_ema + (1 - d_t) * G        d_t = min(g_ema_decay, (1 + t) / (10 + t))

The average of the weights along the path of the last ~``1 / (1 - g_ema_decay)`` steps generates better
images than the weights of any one step, which oscillate around it (Karras et al. 2018 and every StyleGAN and
FastGAN since evaluate it). The warm-up ``(1 + t) / (10 + t)`` (the ``num_updates`` rule of TensorFlow's
``ExponentialMovingAverage``) lets the average follow G closely while G changes fast at the start, so a
short run's average is not held back by the random initial weights.

Averaged are G's trainable weights and its BatchNorm layers' moving statistics (the statistics of the
averaged weights' activations are closer to the average of G's statistics than to G's latest). The other
non-trainable variables are not G's learning: SeedGenerator states are re-seeded before every use, and a
progressive run's fade weight is assigned to both generators.

The update is its own small compiled function on each backend (``tf.function``, ``jax.jit``, torch's
in-place ``mul_``/``add_`` without autograd), called after the step; its decay is a function of the step
number alone and ``G_ema`` is saved in every checkpoint (``generator_ema.weights.h5``), so a resume stays
exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from mammogan_lib.core.frameworks import import_keras
from mammogan_lib.gan.seeding import nested_layers

WARMUP_STEPS = 10
"""``d_t = min(decay, (1 + t) / (WARMUP_STEPS + t))``."""


def ema_decay_at(decay: float, step: int) -> float:
    """The decay used after training step ``step`` (numbered from 1)."""
    return min(decay, (1 + step) / (WARMUP_STEPS + step))


def averaged_variables(model: Any) -> list[Any]:
    """The variables of ``model`` its average follows: trainable weights, then BatchNorm moving statistics."""
    keras = import_keras()
    statistics = [
        variable
        for layer in nested_layers(model)
        if isinstance(layer, keras.layers.BatchNormalization)
        for variable in (layer.moving_mean, layer.moving_variance)
    ]
    return list(model.trainable_variables) + statistics


def make_ema_update(backend: str, average: Any, model: Any, decay: float) -> Callable[[int], None]:
    """``update(step)``: move ``average``'s variables towards ``model``'s by ``ema_decay_at(decay, step)``."""
    targets, sources = averaged_variables(average), averaged_variables(model)
    if [tuple(v.shape) for v in targets] != [tuple(v.shape) for v in sources]:
        raise ValueError(f"the average {average.name!r} is not a copy of {model.name!r}")
    if backend == "tensorflow":
        return _tensorflow_update(targets, sources, decay)
    if backend == "jax":
        return _jax_update(targets, sources, decay)
    return _torch_update(targets, sources, decay)


def _tensorflow_update(targets: list[Any], sources: list[Any], decay: float) -> Callable[[int], None]:
    import tensorflow as tf

    def update(decay_now: Any) -> None:
        for target, source in zip(targets, sources, strict=True):
            target.value.assign(decay_now * target.value + (1 - decay_now) * source.value)

    compiled = tf.function(update, autograph=False)

    def run(step: int) -> None:
        compiled(tf.constant(ema_decay_at(decay, step), tf.float32))

    return run


def _jax_update(targets: list[Any], sources: list[Any], decay: float) -> Callable[[int], None]:
    import jax

    @jax.jit
    def update(averaged: list[Any], current: list[Any], decay_now: Any) -> list[Any]:
        return [decay_now * a + (1 - decay_now) * c for a, c in zip(averaged, current, strict=True)]

    def run(step: int) -> None:
        decay_now = np.float32(ema_decay_at(decay, step))
        new = update([v.value for v in targets], [v.value for v in sources], decay_now)
        for target, value in zip(targets, new, strict=True):
            target.assign(value)

    return run


def _torch_update(targets: list[Any], sources: list[Any], decay: float) -> Callable[[int], None]:
    import torch

    def run(step: int) -> None:
        decay_now = ema_decay_at(decay, step)
        with torch.no_grad():
            for target, source in zip(targets, sources, strict=True):
                target.value.mul_(decay_now).add_(source.value, alpha=1 - decay_now)

    return run
