"""The train step on each Keras 3 backend (the ``backend`` parameter): tensorflow, jax, torch.

The same models, the same losses and the same update on all three, each written in the backend's
documented pattern: TensorFlow two ``GradientTape`` s in one ``tf.function``
(:mod:`~mammogan_lib.gan.backends.tensorflow_step`); JAX ``stateless_call`` + ``jax.vjp`` in one ``jax.jit``
(:mod:`~mammogan_lib.gan.backends.jax_step`); torch autograd (:mod:`~mammogan_lib.gan.backends.torch_step`).
Each
computes ``G(z)`` once and takes both gradients before either optimiser moves; the losses are
:mod:`mammogan_lib.gan.losses`'s, the draws :mod:`mammogan_lib.gan.seeding`'s.

**Randomness.** On every backend everything random in a step is a function of ``(seed, step)``, so a
resume is exact on each. TensorFlow draws with its stateless ops inside the compiled step (the draws every
run before the other backends had). JAX and torch draw on the host with numpy
(:func:`mammogan_lib.gan.seeding.host_draws`: one
``SeedSequence([seed, step])`` split into the same four streams), the same values on both, and hand them
to the step: the latents, the fake images' classes, the DiffAugment values and the states the models'
``SeedGenerator`` s (Dropout, noise) are re-seeded with. So a jax run and a torch run of one seed draw the
same latents; a TensorFlow run of that seed draws others (and its initial weights differ too: each backend's
initialisers draw from its own generator). Given the same weights and the same draws, the three steps
compute the same losses and updates within float tolerance (``tests/test_backends.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Step = Callable[[np.ndarray, int], Any]
"""A backend's step: ``(indices (B,) int, step number) -> [d_loss, g_loss, d_real, d_fake]`` (a tensor)."""


def make_step(trainer: Any) -> Step:
    """The compiled train step of ``trainer`` on its backend (``trainer.backend``)."""
    if trainer.backend == "jax":
        from mammogan_lib.gan.backends.jax_step import make_jax_step

        return make_jax_step(trainer)
    if trainer.backend == "torch":
        from mammogan_lib.gan.backends.torch_step import make_torch_step

        return make_torch_step(trainer)
    from mammogan_lib.gan.backends.tensorflow_step import make_tensorflow_step

    return make_tensorflow_step(trainer)
