"""The Keras ``SeedGenerator`` states inside a model, and re-seeding them statelessly.

Shared by the train step (:mod:`mammogan_lib.training`) and image generation (:mod:`mammogan_lib.generate`),
which must not need the training pipeline: a model's own randomness (Dropout in D, NoiseInjection in the
StyleGAN-like G) is set from a stateless key before each use, so the same key gives the same draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from mammogan_lib.frameworks import import_keras


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
    from mammogan_lib.frameworks import selected_backend

    if selected_backend() != "tensorflow":
        from mammogan_lib.backends import SEED_STATE_HIGH, assign_seed_states

        rng = np.random.default_rng([int(part) for part in np.asarray(key).ravel()])
        assign_seed_states(states, rng.integers(0, SEED_STATE_HIGH, (len(states), 2)))
        return
    import tensorflow as tf

    key = tf.cast(key, tf.int64)
    values = tf.random.stateless_uniform((len(states), 2), key, minval=0, maxval=2**31 - 2, dtype=tf.int64)
    for index, state in enumerate(states):
        state.assign(values[index])
