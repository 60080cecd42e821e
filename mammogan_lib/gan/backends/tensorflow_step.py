"""The train step on the TensorFlow backend: two ``GradientTape`` s in one ``tf.function`` (optional XLA),
data-parallel over several GPUs with ``tf.distribute`` (:mod:`mammogan_lib.gan.distribute`).

Its randomness is TensorFlow's stateless draws keyed on ``(seed, step)``
(:func:`mammogan_lib.gan.seeding.step_seeds`), made inside the compiled step; its losses are
:func:`mammogan_lib.gan.losses.step_losses`.
"""

from __future__ import annotations

from typing import Any

from mammogan_lib.gan import distribute
from mammogan_lib.gan.augment import diff_augment
from mammogan_lib.gan.losses import LOSS_KEYS, Judgement, mean_logits, next_anchors, resized, step_losses
from mammogan_lib.gan.models.common import with_class
from mammogan_lib.gan.models.discriminator import with_logits
from mammogan_lib.gan.models.fastgan import logits_model, reconstruction_size
from mammogan_lib.gan.models.layers import quadrant_of
from mammogan_lib.gan.seeding import (
    STREAM_AUGMENT_FAKE,
    STREAM_AUGMENT_REAL,
    STREAM_LATENT,
    STREAM_SEED_GENERATORS,
    class_draw,
    reseed,
    seed_states,
    step_seeds,
)


def make_tensorflow_step(trainer: Any) -> Any:
    """The compiled step ``(indices (B,) int32, step int64) -> [d_loss, g_loss, d_real, d_fake]``.

    On several devices each replica computes its share of the global batch; its losses are divided by the
    number of replicas, so the gradients Keras's optimiser sums over replicas and the losses summed here are
    the global batch's means (:mod:`mammogan_lib.gan.distribute`).
    """
    import tensorflow as tf

    settings, images, strategy, replicas = (
        trainer.settings,
        trainer.images,
        trainer.strategy,
        trainer.replicas,
    )
    generator, discriminator = trainer.generator, trainer.discriminator
    g_opt, d_opt = trainer.g_optimizer, trainer.d_optimizer
    states = seed_states(generator) + seed_states(discriminator)
    policy = settings.augment_policy
    share = distribute.replica_share(settings.batch_size, replicas)
    r1_gamma, lecam_weight, anchors = settings.r1_gamma, settings.lecam_weight, trainer.lecam_anchors
    regularised = r1_gamma > 0 or lecam_weight > 0
    conditional = trainer.class_labels is not None
    priors = trainer.class_labels.priors if conditional else None

    if regularised:
        scored = with_logits(discriminator)  # the same D, its logits too
    fastgan = settings.architecture == "fastgan"
    if fastgan:
        judged = logits_model(discriminator)  # the same D without its decoders, for the generated images
        rebuilt_side = reconstruction_size(settings.resolution)

    def fastgan_judgement(real_seen: Any, fake_seen: Any, keys: Any) -> Judgement:
        """exp7's D (:mod:`mammogan_lib.gan.models.fastgan`): its logits, and its reconstructions of the real
        images it saw, whole and one quadrant each (drawn from the step's key)."""
        part_seed = tf.random.experimental.stateless_split(keys[STREAM_SEED_GENERATORS], num=2)[1]
        quadrants = distribute.global_batch_draw(
            lambda shape: tf.random.stateless_uniform(shape, part_seed, 0, 4, dtype=tf.int32), (share,)
        )
        real_logits, whole, part = discriminator([real_seen, quadrants], training=True)
        fake_logits = judged(fake_seen, training=True)
        targets = [resized(real_seen, rebuilt_side), resized(quadrant_of(real_seen, quadrants), rebuilt_side)]
        d_real, d_fake = tf.sigmoid(real_logits), tf.sigmoid(fake_logits)
        return Judgement(d_real, d_fake, real_logits, fake_logits, rebuilt=[whole, part], targets=targets)

    def regularised_judgement(
        real_seen: Any, fake_seen: Any, real_classes: Any, fake_classes: Any
    ) -> Judgement:
        """D's probabilities and logits, and for R1 the input gradient of its logits on the real images:
        taken with a tape nested in the step's, so that R1's gradient w.r.t. D's weights is exact."""
        with tf.GradientTape(watch_accessed_variables=False) as r1_tape:
            r1_tape.watch(real_seen)
            real_logits, d_real = scored(with_class(real_seen, real_classes), training=True)
            logit_sum = tf.reduce_sum(tf.cast(real_logits, tf.float32))  # on the tape: R1 differentiates it
        fake_logits, d_fake = scored(with_class(fake_seen, fake_classes), training=True)
        input_gradients = r1_tape.gradient(logit_sum, real_seen) if r1_gamma else None
        return Judgement(d_real, d_fake, real_logits, fake_logits, input_gradients)

    def replica_step(indices: Any, keys: Any) -> Any:
        replica, _ = distribute.replica_position()
        rows = indices[replica * share : (replica + 1) * share]
        real = tf.gather(images, rows)  # (share, R, R, 1)
        z = distribute.global_batch_draw(
            lambda shape: tf.random.stateless_normal(shape, keys[STREAM_LATENT]), (share, settings.latent_dim)
        )
        real_classes = fake_classes = None
        if conditional:
            real_classes = tf.gather(trainer.labels, rows)  # (share,)
            fake_classes = distribute.global_batch_draw(
                lambda shape: class_draw(keys, shape, priors), (share,)
            )
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            # computed once, used by both updates
            fake = generator(with_class(z, fake_classes), training=True)
            real_seen = diff_augment(real, policy, keys[STREAM_AUGMENT_REAL])
            fake_seen = diff_augment(fake, policy, keys[STREAM_AUGMENT_FAKE])
            if fastgan:
                judgement = fastgan_judgement(real_seen, fake_seen, keys)
            elif regularised:
                judgement = regularised_judgement(real_seen, fake_seen, real_classes, fake_classes)
            else:  # D's probabilities alone, as the thesis's step computed them
                d_real = discriminator(with_class(real_seen, real_classes), training=True)
                d_fake = discriminator(with_class(fake_seen, fake_classes), training=True)
                judgement = Judgement(d_real, d_fake)
            d_loss, g_loss = step_losses(settings, judgement, anchors)
            d_loss, g_loss = d_loss / replicas, g_loss / replicas
            d_scaled, g_scaled = d_opt.scale_loss(d_loss), g_opt.scale_loss(g_loss)
        d_grads = d_tape.gradient(d_scaled, discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_scaled, generator.trainable_variables)
        # A lookup's gradient (the class embeddings; UpsampleConv2D's kernel taps) is IndexedSlices with
        # repeated rows: applied (or all-reduced) as such, Adam's second moment would square the rows before
        # summing them. Dense, it is the Adam of the other backends.
        d_grads, g_grads = ([tf.convert_to_tensor(g) for g in grads] for grads in (d_grads, g_grads))
        d_opt.apply(d_grads, discriminator.trainable_variables)
        g_opt.apply(g_grads, generator.trainable_variables)
        d_real, d_fake = judgement.d_real, judgement.d_fake
        # with LeCam, also the mean logits (real, fake) for its anchors; summed over replicas, global means
        logit_means = (
            tf.unstack(mean_logits(judgement.real_logits, judgement.fake_logits)) if lecam_weight else []
        )
        return tf.stack(
            [d_loss, g_loss, tf.reduce_mean(d_real) / replicas, tf.reduce_mean(d_fake) / replicas]
            + [mean / replicas for mean in logit_means]
        )

    def step(indices: Any, step_number: Any) -> Any:
        keys = step_seeds(settings.seed, step_number)
        reseed(states, keys[STREAM_SEED_GENERATORS])  # in the cross-replica context: every copy alike
        if replicas == 1:
            values = replica_step(indices, keys)
        else:
            per_replica = strategy.run(compiled_replica_step, args=(indices, keys))
            values = strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
        if not lecam_weight:
            return values
        # after the step, which used the earlier anchors; in the cross-replica context: every copy alike
        anchors.assign(next_anchors(anchors, values[len(LOSS_KEYS) :]))
        return values[: len(LOSS_KEYS)]

    # no autograph: the step has no tensor-dependent Python control flow. XLA compiles what runs on one
    # device: the whole step, or each replica's share.
    compiled_replica_step = tf.function(replica_step, jit_compile=settings.jit_compile, autograph=False)
    compiled = tf.function(step, jit_compile=settings.jit_compile and replicas == 1, autograph=False)

    def run(indices: Any, step_number: int) -> Any:
        return compiled(tf.constant(indices, tf.int32), tf.constant(step_number, tf.int64))

    return run
