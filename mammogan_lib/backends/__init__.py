"""The train step on each Keras 3 backend (the ``backend`` parameter): tensorflow, jax, torch.

The same models, the same losses and the same update on all three, each written in the backend's
documented pattern: TensorFlow two ``GradientTape`` s in one ``tf.function``
(:mod:`~mammogan_lib.backends.tensorflow_step`); JAX ``stateless_call`` + ``jax.vjp`` in one ``jax.jit``
(:mod:`~mammogan_lib.backends.jax_step`); torch autograd (:mod:`~mammogan_lib.backends.torch_step`). Each
computes ``G(z)`` once and takes both gradients before either optimiser moves (see
:mod:`mammogan_lib.training` for the losses).

**Randomness.** On every backend everything random in a step is a function of ``(seed, step)``, so a
resume is exact on each. TensorFlow draws with its stateless ops inside the compiled step (the draws every
run before the other backends had). JAX and torch draw on the host with numpy (:func:`host_draws`: one
``SeedSequence([seed, step])`` split into the same four streams), the same values on both, and hand them
to the step: the latents, the fake images' classes, the DiffAugment values and the states the models'
``SeedGenerator`` s (Dropout, noise) are re-seeded with. So a jax run and a torch run of one seed draw the
same latents; a TensorFlow run of that seed draws others (and its initial weights differ too: each backend's
initialisers draw from its own generator). Given the same weights and the same draws, the three steps
compute the same losses and updates within float tolerance (``tests/test_backends.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mammogan_lib.augment import augment_draws
from mammogan_lib.frameworks import import_keras

STREAM_LATENT, STREAM_SEED_GENERATORS, STREAM_AUGMENT_REAL, STREAM_AUGMENT_FAKE = range(4)
"""Streams of the per-step key ``(seed, step)``: independent seeds for each use."""

LECAM_DECAY = 0.99
"""Decay of LeCam's anchors, the moving averages of D's mean logit on real and on generated images."""

SEED_STATE_HIGH = 2**31 - 2
"""SeedGenerator states are drawn in ``[0, SEED_STATE_HIGH)``: they fit every backend's seed dtype."""

Step = Callable[[np.ndarray, int], Any]
"""A backend's step: ``(indices (B,) int, step number) -> [d_loss, g_loss, d_real, d_fake]`` (a tensor)."""


def make_step(trainer: Any) -> Step:
    """The compiled train step of ``trainer`` on its backend (``trainer.backend``)."""
    if trainer.backend == "jax":
        from mammogan_lib.backends.jax_step import make_jax_step

        return make_jax_step(trainer)
    if trainer.backend == "torch":
        from mammogan_lib.backends.torch_step import make_torch_step

        return make_torch_step(trainer)
    from mammogan_lib.backends.tensorflow_step import make_tensorflow_step

    return make_tensorflow_step(trainer)


# --- host-side randomness (jax, torch) ------------------------------------------------------------------


@dataclass(frozen=True)
class HostDraws:
    """Everything random in one step of a jax or torch run, drawn on the host from ``(seed, step)``."""

    latents: np.ndarray  # (B, latent_dim) float32
    fake_classes: np.ndarray | None  # (B,) int32, conditional runs only
    seed_states: np.ndarray  # (number of SeedGenerators, 2): the models' Dropout/noise seeds
    augment_real: list[Any]  # DiffAugment values of the real images (augment.augment_draws)
    augment_fake: list[Any]  # ... and of the generated ones


def step_streams(seed: int, step: int) -> list[np.random.Generator]:
    """The four independent numpy generators of ``(seed, step)`` (``STREAM_*``)."""
    return [np.random.default_rng(child) for child in np.random.SeedSequence([seed, step]).spawn(4)]


def host_latents(seed: int, step: int, batch: int, latent_dim: int) -> np.ndarray:
    """The latent vectors ``(batch, latent_dim)`` float32 of ``step`` on the jax and torch backends."""
    return step_streams(seed, step)[STREAM_LATENT].standard_normal((batch, latent_dim)).astype(np.float32)


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
) -> HostDraws:
    """The draws of ``step`` (see the module doc). The fake classes come after the latents in the latent
    stream, so the latents are those of an unconditional run of the seed."""
    latent, states, augment_real, augment_fake = step_streams(seed, step)
    latents = latent.standard_normal((batch, latent_dim)).astype(np.float32)
    fake_classes = None if priors is None else classes_from_uniform(latent.uniform(size=batch), priors)
    return HostDraws(
        latents,
        fake_classes,
        states.integers(0, SEED_STATE_HIGH, (seed_state_count, 2)),
        augment_draws(augment_names, batch, image_size, augment_real),
        augment_draws(augment_names, batch, image_size, augment_fake),
    )


def assign_seed_states(states: Sequence[Any], values: np.ndarray) -> None:
    """Give each SeedGenerator state its drawn value (host-side, in the state's own dtype)."""
    for state, value in zip(states, values, strict=True):
        state.assign(np.asarray(value).astype(state.dtype))


# --- losses every backend shares (keras.ops) ------------------------------------------------------------


def binary_crossentropy(target: float, probabilities: Any) -> Any:
    """Mean binary cross-entropy of probabilities against a constant label (Keras clips at 1e-7)."""
    keras = import_keras()
    labels = keras.ops.full_like(probabilities, target)
    return keras.ops.mean(keras.losses.binary_crossentropy(labels, probabilities))


def r1_from_gradients(gradients: Any, gamma: float) -> Any:
    """``gamma / 2 * E[||grad_x logit(x)||^2]`` from the input gradients ``(N, H, W, 1)`` of D's logit sum
    (each image's gradient is its own: D mixes no images)."""
    ops = import_keras().ops
    gradients = ops.cast(gradients, "float32")
    return gamma / 2 * ops.mean(ops.sum(ops.square(gradients), axis=(1, 2, 3)))


def lecam_penalty(real_logits: Any, fake_logits: Any, anchors: Any, weight: float) -> Any:
    """``weight * (E[(logit(real) - a_fake)^2] + E[(logit(fake) - a_real)^2])``, anchors [a_real, a_fake]."""
    ops = import_keras().ops
    real, fake = ops.cast(real_logits, "float32"), ops.cast(fake_logits, "float32")
    anchor_real, anchor_fake = anchors[0], anchors[1]
    return weight * (ops.mean(ops.square(real - anchor_fake)) + ops.mean(ops.square(fake - anchor_real)))


def mean_logits(real_logits: Any, fake_logits: Any) -> Any:
    """``[E logit(real), E logit(fake)]`` (float32): what LeCam's anchors average."""
    ops = import_keras().ops
    return ops.stack([ops.mean(ops.cast(logits, "float32")) for logits in (real_logits, fake_logits)])


def hinge_losses(real_logits: Any, fake_logits: Any) -> tuple[Any, Any]:
    """``(d_loss, g_loss)`` of the hinge loss on D's logits (any shape, e.g. one per patch; float32)::

    d_loss = E[max(0, 1 - D(real))] + E[max(0, 1 + D(fake))]      g_loss = -E[D(fake)]
    """
    ops = import_keras().ops
    real, fake = ops.cast(real_logits, "float32"), ops.cast(fake_logits, "float32")
    d_loss = ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))
    return d_loss, -ops.mean(fake)


def resized(images: Any, side: int) -> Any:
    """``images`` ``(N, H, W, 1)`` bilinearly resized to ``side`` square (antialiased when smaller)."""
    ops = import_keras().ops
    if images.shape[1] == side and images.shape[2] == side:
        return images
    return ops.image.resize(images, (side, side), interpolation="bilinear", antialias=True)


def reconstruction_loss(rebuilt: Sequence[Any], targets: Sequence[Any], weight: float) -> Any:
    """``weight`` times the sum over the decoders of the mean absolute error between each rebuilt image and
    its target (float32): the self-supervised discriminator's loss on real images."""
    ops = import_keras().ops
    errors = [
        ops.mean(ops.abs(ops.cast(image, "float32") - ops.cast(target, "float32")))
        for image, target in zip(rebuilt, targets, strict=True)
    ]
    return weight * sum(errors)


def with_class(x: Any, classes: Any) -> Any:
    """A model's inputs: ``x`` alone, or ``[x, classes]`` in a conditional run (``classes`` not None)."""
    return x if classes is None else [x, classes]
