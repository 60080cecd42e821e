"""The Keras ``SeedGenerator`` states inside a model, and re-seeding them statelessly.

Shared by the train step (:mod:`mammogan_lib.gan.training`) and image generation
(:mod:`mammogan_lib.gan.generate`),
which must not need the training pipeline: a model's own randomness (Dropout in D, NoiseInjection in the
StyleGAN-like G) is set from a stateless key before each use, so the same key gives the same draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mammogan_lib.core.config import parse_policy
from mammogan_lib.core.frameworks import import_keras, selected_backend
from mammogan_lib.gan.augment import augment_draws


def seed_states(model: Any) -> list[Any]:
    """The state variables of every ``keras.random.SeedGenerator`` inside ``model`` (Dropout, noise)."""
    keras = import_keras()
    states: dict[int, Any] = {}
    for layer in nested_layers(model):
        for value in vars(layer).values():
            if isinstance(value, keras.random.SeedGenerator):
                states.setdefault(id(value.state), value.state)
    return list(states.values())


def nested_layers(model: Any) -> Iterator[Any]:
    """``model`` and every layer inside it, nested models included."""
    pending = [model]
    while pending:
        layer = pending.pop()
        yield layer
        pending.extend(getattr(layer, "layers", []))


def reseed(states: Sequence[Any], key: Any) -> None:
    """Assign each SeedGenerator state a value drawn from the stateless seed ``key`` (a pair of ints):
    TensorFlow's stateless draw on the tensorflow backend (eager or traced), numpy's on the others."""
    if not states:
        return
    if selected_backend() != "tensorflow":
        rng = np.random.default_rng([int(part) for part in np.asarray(key).ravel()])
        assign_seed_states(states, rng.integers(0, SEED_STATE_HIGH, (len(states), 2)))
        return
    import tensorflow as tf

    key = tf.cast(key, tf.int64)
    values = tf.random.stateless_uniform((len(states), 2), key, minval=0, maxval=2**31 - 2, dtype=tf.int64)
    for index, state in enumerate(states):
        state.assign(values[index])


# --- a step's draws: a function of (seed, step) on every backend ---------------------------------------


STREAM_LATENT, STREAM_SEED_GENERATORS, STREAM_AUGMENT_REAL, STREAM_AUGMENT_FAKE = range(4)
"""Streams of the per-step key ``(seed, step)``: independent seeds for each use."""

SEED_STATE_HIGH = 2**31 - 2
"""SeedGenerator states are drawn in ``[0, SEED_STATE_HIGH)``: they fit every backend's seed dtype."""


def step_seeds(seed: int, step: Any) -> Any:
    """Four independent stateless seeds ``(4, 2)`` for ``step`` (streams ``STREAM_*``)."""
    import tensorflow as tf

    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
    return tf.random.experimental.stateless_split(key, num=4)


def latent_batch(seed: int, step: Any, batch: int, latent_dim: int) -> Any:
    """The latent vectors ``(batch, latent_dim)`` of ``step`` (step 0: the fixed-noise samples)."""
    import tensorflow as tf

    return tf.random.stateless_normal((batch, latent_dim), seed=step_seeds(seed, step)[STREAM_LATENT])


def class_draw(keys: Any, shape: Sequence[Any], priors: Any) -> Any:
    """Class indices ``shape`` (int32) drawn with ``priors`` from the latent stream of a step's ``keys``
    (split off it, so the latents themselves are those of an unconditional run).

    By the inverse of the classes' cumulative distribution on a uniform draw: XLA compiles it, which it
    does not ``stateless_categorical``."""
    import tensorflow as tf

    seed = tf.random.experimental.stateless_split(keys[STREAM_LATENT], num=2)[1]
    bounds = tf.constant(np.cumsum(np.asarray(priors, np.float64))[:-1], tf.float32)  # (n_classes - 1,)
    uniform = tf.random.stateless_uniform([shape[0]], seed)  # (batch,) in [0, 1)
    return tf.reduce_sum(tf.cast(uniform[:, None] >= bounds[None, :], tf.int32), axis=1)


def label_batch(seed: int, step: Any, batch: int, priors: Any) -> Any:
    """The generated images' classes ``(batch,)`` int32 of ``step`` of a conditional run (``priors``: each
    class's share of the training images)."""
    return class_draw(step_seeds(seed, step), [batch], priors)


def sample_classes(count: int, n_classes: int) -> np.ndarray:
    """The classes of the fixed-noise samples: the classes in turn (a grid's columns alternate)."""
    return (np.arange(count) % n_classes).astype(np.int32)


def epoch_permutation(seed: int, epoch: int, count: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the ``count`` training images."""
    return np.random.default_rng([seed, epoch]).permutation(count)


@dataclass(frozen=True)
class HostDraws:
    """Everything random in one step of a jax or torch run, drawn on the host from ``(seed, step)``."""

    latents: np.ndarray  # (B, latent_dim) float32
    fake_classes: np.ndarray | None  # (B,) int32, conditional runs only
    seed_states: np.ndarray  # (number of SeedGenerators, 2): the models' Dropout/noise seeds
    augment_real: list[Any]  # DiffAugment values of the real images (augment.augment_draws)
    augment_fake: list[Any]  # ... and of the generated ones
    quadrants: np.ndarray | None = None  # (B,) int32 in 0..3: the quadrant exp7's D rebuilds of each image


def step_streams(seed: int, step: int) -> list[np.random.Generator]:
    """The four independent numpy generators of ``(seed, step)`` (``STREAM_*``)."""
    return [np.random.default_rng(child) for child in np.random.SeedSequence([seed, step]).spawn(4)]


def classes_from_uniform(uniform: np.ndarray, priors: Sequence[float]) -> np.ndarray:
    """Class indices (int32) with ``priors`` from uniform draws in [0, 1): the inverse of the classes'
    cumulative distribution, as the TensorFlow step draws them."""
    bounds = np.cumsum(np.asarray(priors, np.float64))[:-1].astype(np.float32)  # (n_classes - 1,)
    return (np.asarray(uniform, np.float32)[:, None] >= bounds[None, :]).sum(axis=1).astype(np.int32)


def host_draws(
    seed: int,
    step: int,
    batch: int,
    latent_dim: int,
    priors: Sequence[float] | None,
    seed_state_count: int,
    augment_names: Sequence[str],
    image_size: tuple[int, int],
    quadrants: bool = False,
) -> HostDraws:
    """The draws of ``step`` (see the module doc). The fake classes come after the latents in the latent
    stream, and exp7's quadrants (``quadrants``) after the SeedGenerators' states in theirs, so the other
    draws are those of a plain run of the seed."""
    latent, states, augment_real, augment_fake = step_streams(seed, step)
    latents = latent.standard_normal((batch, latent_dim)).astype(np.float32)
    fake_classes = None if priors is None else classes_from_uniform(latent.uniform(size=batch), priors)
    seed_values = states.integers(0, SEED_STATE_HIGH, (seed_state_count, 2))
    return HostDraws(
        latents,
        fake_classes,
        seed_values,
        augment_draws(augment_names, batch, image_size, augment_real),
        augment_draws(augment_names, batch, image_size, augment_fake),
        states.integers(0, 4, batch).astype(np.int32) if quadrants else None,
    )


def step_draws(trainer: Any, step: int, batch: int, seed_state_count: int) -> HostDraws:
    """:func:`host_draws` of a jax or torch trainer's ``step``, for ``batch`` images and its models'
    ``seed_state_count`` SeedGenerators."""
    settings = trainer.settings
    priors = trainer.class_labels.priors if trainer.class_labels is not None else None
    return host_draws(
        settings.seed,
        step,
        batch,
        settings.latent_dim,
        priors,
        seed_state_count,
        parse_policy(settings.augment_policy),
        tuple(int(side) for side in trainer.images.shape[1:3]),
        quadrants=settings.architecture == "fastgan",
    )


def assign_seed_states(states: Sequence[Any], values: np.ndarray) -> None:
    """Give each SeedGenerator state its drawn value (host-side, in the state's own dtype)."""
    for state, value in zip(states, values, strict=True):
        state.assign(np.asarray(value).astype(state.dtype))
