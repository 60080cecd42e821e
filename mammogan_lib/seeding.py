"""The Keras ``SeedGenerator`` states inside a model, and re-seeding them statelessly.

Shared by the train step (:mod:`mammogan_lib.training`) and image generation (:mod:`mammogan_lib.generate`),
which must not need the training pipeline: a model's own randomness (Dropout in D, NoiseInjection in the
StyleGAN-like G) is set from a stateless key before each use, so the same key gives the same draws.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

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
    """Assign each SeedGenerator state a value drawn from the stateless seed ``key`` (eager or traced)."""
    import tensorflow as tf

    if not states:
        return
    values = tf.random.stateless_uniform((len(states), 2), key, minval=0, maxval=2**31 - 2, dtype=tf.int64)
    for index, state in enumerate(states):
        state.assign(values[index])
