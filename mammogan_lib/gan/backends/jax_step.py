"""The train step on the JAX backend: ``stateless_call``, ``jax.vjp`` and ``stateless_apply`` in one
``jax.jit``.

The step is a pure function of the models' and optimisers' variable values, the batch and the step's draws.
One forward pass, ``fake = G(z)``, gives both losses; ``jax.vjp`` of ``(d_loss, g_loss)`` w.r.t. G's and D's
weights is pulled back twice — with ``(1, 0)`` for D's gradient and ``(0, 1)`` for G's — before either
optimiser moves (what two gradient tapes over one forward pass give in TensorFlow). R1's input gradient is a
``jax.grad`` inside the differentiated function, so its gradient w.r.t. D's weights is exact.

Each call reads the Keras variables' current values, runs the compiled step and assigns the results back
(on the JAX backend an assignment rebinds an array: no copy), so checkpoints, samples and the optimisers'
own bookkeeping see the Keras variables exactly as on the other backends. The randomness is drawn on the
host (:func:`mammogan_lib.gan.seeding.host_draws`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mammogan_lib.core.config import parse_policy
from mammogan_lib.core.frameworks import import_keras
from mammogan_lib.gan.augment import apply_augment
from mammogan_lib.gan.losses import Judgement, mean_logits, next_anchors, resized, step_losses
from mammogan_lib.gan.models.common import with_class
from mammogan_lib.gan.models.discriminator import with_logits
from mammogan_lib.gan.models.fastgan import logits_model, reconstruction_size
from mammogan_lib.gan.models.layers import quadrant_of
from mammogan_lib.gan.seeding import assign_seed_states, seed_states, step_draws


def make_jax_step(trainer: Any) -> Any:
    """The step ``(indices, step number) -> [d_loss, g_loss, d_real, d_fake]`` of ``trainer`` (JAX)."""
    import jax
    import jax.numpy as jnp

    keras = import_keras()
    ops = keras.ops
    settings = trainer.settings
    generator, discriminator = trainer.generator, trainer.discriminator
    fastgan = settings.architecture == "fastgan"
    # the same D (same variables, same order) with its logits; exp7's D gives its logits itself
    scored = discriminator if fastgan else with_logits(discriminator)
    g_opt, d_opt = trainer.g_optimizer, trainer.d_optimizer
    states = seed_states(generator) + seed_states(discriminator)
    names = parse_policy(settings.augment_policy)
    conditional = trainer.class_labels is not None
    r1_gamma, lecam_weight = settings.r1_gamma, settings.lecam_weight
    variable_groups = (
        generator.trainable_variables,
        generator.non_trainable_variables,
        scored.trainable_variables,
        scored.non_trainable_variables,
        g_opt.variables,
        d_opt.variables,
    )

    if fastgan:
        judged = logits_model(discriminator)  # D without its decoders, for the generated images
        rebuilt_side = reconstruction_size(settings.resolution)
        # where judged's variables sit among D's (a subset of them: the decoders are left out)
        trainable_at = {id(v): i for i, v in enumerate(discriminator.trainable_variables)}
        rest_at = {id(v): i for i, v in enumerate(discriminator.non_trainable_variables)}
        judged_trainable = [trainable_at[id(v)] for v in judged.trainable_variables]
        judged_rest = [rest_at[id(v)] for v in judged.non_trainable_variables]

    def fastgan_judgement(d_train, d_rest, real_seen, fake_seen, quadrants):
        """exp7's D on the real images (logits and reconstructions) and, without its decoders, on the
        generated ones; D's non-trainable state after both."""
        (real_logits, whole, part), d_rest = discriminator.stateless_call(
            d_train, d_rest, [real_seen, quadrants], training=True
        )
        fake_logits, judged_state = judged.stateless_call(
            [d_train[i] for i in judged_trainable], [d_rest[i] for i in judged_rest], fake_seen, training=True
        )
        d_rest = list(d_rest)
        for index, value in zip(judged_rest, judged_state, strict=True):
            d_rest[index] = value
        targets = [resized(real_seen, rebuilt_side), resized(quadrant_of(real_seen, quadrants), rebuilt_side)]
        d_real, d_fake = ops.sigmoid(real_logits), ops.sigmoid(fake_logits)
        judgement = Judgement(
            d_real, d_fake, real_logits, fake_logits, rebuilt=[whole, part], targets=targets
        )
        return judgement, d_rest

    def scaled_loss(optimizer: Any, optimizer_values: Any, loss: Any) -> Any:
        """``optimizer.scale_loss(loss)`` reading the optimiser's (loss scale) variables from their values."""
        mapping = list(zip(optimizer.variables, optimizer_values, strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            return optimizer.scale_loss(loss)

    def losses(
        g_train, d_train, g_rest, d_rest, g_opt_values, d_opt_values, real, real_classes, draws, anchors
    ):
        fake_classes = draws["fake_classes"]
        fake, g_rest = generator.stateless_call(
            g_train, g_rest, with_class(draws["latents"], fake_classes), training=True
        )
        real_seen = apply_augment(real, names, draws["augment_real"])
        fake_seen = apply_augment(fake, names, draws["augment_fake"])
        if fastgan:
            judgement, d_rest = fastgan_judgement(d_train, d_rest, real_seen, fake_seen, draws["quadrants"])
            return finished(judgement, g_rest, d_rest, g_opt_values, d_opt_values, anchors)

        def on_real(images: Any, rest: Any) -> Any:
            (logits, probabilities), rest = scored.stateless_call(
                d_train, rest, with_class(images, real_classes), training=True
            )
            return jnp.sum(logits.astype(jnp.float32)), (logits, probabilities, rest)

        input_gradients = None
        if r1_gamma:
            input_gradients, (real_logits, d_real, d_rest) = jax.grad(on_real, has_aux=True)(
                real_seen, d_rest
            )
        else:
            _, (real_logits, d_real, d_rest) = on_real(real_seen, d_rest)
        (fake_logits, d_fake), d_rest = scored.stateless_call(
            d_train, d_rest, with_class(fake_seen, fake_classes), training=True
        )
        judgement = Judgement(d_real, d_fake, real_logits, fake_logits, input_gradients)
        return finished(judgement, g_rest, d_rest, g_opt_values, d_opt_values, anchors)

    def finished(judgement, g_rest, d_rest, g_opt_values, d_opt_values, anchors):
        """The losses of ``judgement``, scaled for the optimisers, with what the step reports."""
        d_loss, g_loss = step_losses(settings, judgement, anchors)
        d_real, d_fake = judgement.d_real, judgement.d_fake
        real_logits, fake_logits = judgement.real_logits, judgement.fake_logits
        scaled = (scaled_loss(d_opt, d_opt_values, d_loss), scaled_loss(g_opt, g_opt_values, g_loss))
        values = jnp.stack([d_loss, g_loss, ops.mean(d_real), ops.mean(d_fake)])
        return scaled, (values, g_rest, d_rest, mean_logits(real_logits, fake_logits))

    def update(
        g_train, g_rest, d_train, d_rest, g_opt_values, d_opt_values, anchors, images, labels, indices, draws
    ):
        real = jnp.take(images, indices, axis=0)  # (B, R, R, 1)
        real_classes = jnp.take(labels, indices, axis=0) if conditional else None

        def both_losses(g_weights, d_weights):
            return losses(
                g_weights,
                d_weights,
                g_rest,
                d_rest,
                g_opt_values,
                d_opt_values,
                real,
                real_classes,
                draws,
                anchors,
            )

        scaled, pullback, (values, g_rest, d_rest, logit_means) = jax.vjp(
            both_losses, g_train, d_train, has_aux=True
        )
        one, zero = jnp.ones_like(scaled[0]), jnp.zeros_like(scaled[0])
        _, d_grads = pullback((one, zero))
        g_grads, _ = pullback((zero, one))
        d_train, d_opt_values = d_opt.stateless_apply(d_opt_values, d_grads, d_train)
        g_train, g_opt_values = g_opt.stateless_apply(g_opt_values, g_grads, g_train)
        if lecam_weight:  # after the step, which used the earlier anchors
            anchors = next_anchors(anchors, logit_means)
        return (g_train, g_rest, d_train, d_rest, g_opt_values, d_opt_values), anchors, values

    compiled = jax.jit(update)
    labels = trainer.labels if conditional else jnp.zeros((0,), jnp.int32)

    def step(indices: np.ndarray, step_number: int) -> Any:
        draws = step_draws(trainer, step_number, len(indices), len(states))
        assign_seed_states(states, draws.seed_states)
        current = [[v.value for v in group] for group in variable_groups]
        new_values, anchors, values = compiled(
            *current,
            trainer.lecam_anchors.value,
            trainer.images,
            labels,
            np.asarray(indices, np.int32),
            {
                "latents": draws.latents,
                "fake_classes": draws.fake_classes,
                "augment_real": draws.augment_real,
                "augment_fake": draws.augment_fake,
                "quadrants": draws.quadrants,
            },
        )
        for group, group_values in zip(variable_groups, new_values, strict=True):
            for variable, value in zip(group, group_values, strict=True):
                variable.assign(value)
        trainer.lecam_anchors.assign(anchors)
        return values

    return step
