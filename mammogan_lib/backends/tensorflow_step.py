"""The train step on the TensorFlow backend: two ``GradientTape`` s in one ``tf.function`` (optional XLA),
data-parallel over several GPUs with ``tf.distribute`` (:mod:`mammogan_lib.distribute`).

Its randomness is TensorFlow's stateless draws keyed on ``(seed, step)`` (:func:`mammogan_lib.training.
step_seeds`), made inside the compiled step.

``architecture: fastgan`` (exp7) trains here alone: its hinge loss and its discriminator's reconstruction
loss (:func:`mammogan_lib.backends.hinge_losses`, :func:`~mammogan_lib.backends.reconstruction_loss`) replace
the cross-entropy; the configuration refuses it on the other backends.
"""

from __future__ import annotations

from typing import Any

from mammogan_lib import distribute
from mammogan_lib.augment import diff_augment
from mammogan_lib.backends import (
    LECAM_DECAY,
    STREAM_AUGMENT_FAKE,
    STREAM_AUGMENT_REAL,
    STREAM_LATENT,
    STREAM_SEED_GENERATORS,
    binary_crossentropy,
    hinge_losses,
    lecam_penalty,
    mean_logits,
    reconstruction_loss,
    resized,
    with_class,
)
from mammogan_lib.seeding import reseed, seed_states


def make_tensorflow_step(trainer: Any) -> Any:
    """The compiled step ``(indices (B,) int32, step int64) -> [d_loss, g_loss, d_real, d_fake]``.

    On several devices each replica computes its share of the global batch; its losses are divided by the
    number of replicas, so the gradients Keras's optimiser sums over replicas and the losses summed here are
    the global batch's means (:mod:`mammogan_lib.distribute`).
    """
    import tensorflow as tf

    from mammogan_lib.models.discriminator import with_logits
    from mammogan_lib.training import LOSS_KEYS, class_draw, r1_penalty, step_seeds

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
        from mammogan_lib.models.fastgan import logits_model, reconstruction_size
        from mammogan_lib.models.layers import quadrant_of

        judged = logits_model(discriminator)  # the same D without its decoders, for the generated images
        rebuilt_side = reconstruction_size(settings.resolution)

    def fastgan_losses(real_seen: Any, fake_seen: Any, keys: Any) -> tuple[Any, ...]:
        """exp7's losses (:mod:`mammogan_lib.models.fastgan`): hinge, plus D's reconstruction of the real
        images it saw, whole and one quadrant each (drawn from the step's key); then D(real), D(fake) as
        the sigmoid of the logits, for the loss log."""
        part_seed = tf.random.experimental.stateless_split(keys[STREAM_SEED_GENERATORS], num=2)[1]
        quadrants = distribute.global_batch_draw(
            lambda shape: tf.random.stateless_uniform(shape, part_seed, 0, 4, dtype=tf.int32), (share,)
        )
        real_logits, whole, part = discriminator([real_seen, quadrants], training=True)
        fake_logits = judged(fake_seen, training=True)
        d_loss, g_loss = hinge_losses(real_logits, fake_logits)
        targets = [resized(real_seen, rebuilt_side), resized(quadrant_of(real_seen, quadrants), rebuilt_side)]
        d_loss += reconstruction_loss([whole, part], targets, settings.d_reconstruction_weight)
        return d_loss, g_loss, tf.sigmoid(real_logits), tf.sigmoid(fake_logits)

    def regularised_d_loss(
        real_seen: Any, fake_seen: Any, real_classes: Any, fake_classes: Any
    ) -> tuple[Any, ...]:
        """D's loss with R1 and LeCam (in the tapes' context), D(real), D(fake) and the mean logits."""
        with tf.GradientTape(watch_accessed_variables=False) as r1_tape:
            r1_tape.watch(real_seen)
            real_logits, d_real = scored(with_class(real_seen, real_classes), training=True)
            logit_sum = tf.reduce_sum(tf.cast(real_logits, tf.float32))  # on the tape: R1 differentiates it
        fake_logits, d_fake = scored(with_class(fake_seen, fake_classes), training=True)
        d_loss = binary_crossentropy(1.0, d_real) + binary_crossentropy(0.0, d_fake)
        if r1_gamma:
            d_loss += r1_penalty(r1_tape, logit_sum, real_seen, r1_gamma)
        if lecam_weight:
            d_loss += lecam_penalty(real_logits, fake_logits, anchors, lecam_weight)
        return d_loss, d_real, d_fake, tf.unstack(mean_logits(real_logits, fake_logits))

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
        logit_means = []
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            # computed once, used by both updates
            fake = generator(with_class(z, fake_classes), training=True)
            if fastgan or regularised:
                real_seen = diff_augment(real, policy, keys[STREAM_AUGMENT_REAL])
                fake_seen = diff_augment(fake, policy, keys[STREAM_AUGMENT_FAKE])
            if fastgan:
                d_loss, g_loss, d_real, d_fake = fastgan_losses(real_seen, fake_seen, keys)
                d_loss, g_loss = d_loss / replicas, g_loss / replicas
            elif regularised:
                d_loss, d_real, d_fake, logit_means = regularised_d_loss(
                    real_seen, fake_seen, real_classes, fake_classes
                )
                d_loss = d_loss / replicas
            else:  # exactly the unregularised step of before
                real_seen = with_class(diff_augment(real, policy, keys[STREAM_AUGMENT_REAL]), real_classes)
                d_real = discriminator(real_seen, training=True)
                fake_seen = with_class(diff_augment(fake, policy, keys[STREAM_AUGMENT_FAKE]), fake_classes)
                d_fake = discriminator(fake_seen, training=True)
                d_loss = (binary_crossentropy(1.0, d_real) + binary_crossentropy(0.0, d_fake)) / replicas
            if not fastgan:
                g_loss = binary_crossentropy(1.0, d_fake) / replicas  # non-saturating
            d_scaled, g_scaled = d_opt.scale_loss(d_loss), g_opt.scale_loss(g_loss)
        d_grads = d_tape.gradient(d_scaled, discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_scaled, generator.trainable_variables)
        # A lookup's gradient (the class embeddings; UpsampleConv2D's kernel taps) is IndexedSlices with
        # repeated rows: applied (or all-reduced) as such, Adam's second moment would square the rows before
        # summing them. Dense, it is the Adam of the other backends.
        d_grads, g_grads = ([tf.convert_to_tensor(g) for g in grads] for grads in (d_grads, g_grads))
        d_opt.apply(d_grads, discriminator.trainable_variables)
        g_opt.apply(g_grads, generator.trainable_variables)
        # with LeCam, also the mean logits (real, fake) for its anchors; summed over replicas, global means
        return tf.stack(
            [d_loss, g_loss, tf.reduce_mean(d_real) / replicas, tf.reduce_mean(d_fake) / replicas]
            + ([mean / replicas for mean in logit_means] if lecam_weight else [])
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
        anchors.assign(LECAM_DECAY * anchors + (1 - LECAM_DECAY) * values[len(LOSS_KEYS) :])
        return values[: len(LOSS_KEYS)]

    # no autograph: the step has no tensor-dependent Python control flow. XLA compiles what runs on one
    # device: the whole step, or each replica's share.
    compiled_replica_step = tf.function(replica_step, jit_compile=settings.jit_compile, autograph=False)
    compiled = tf.function(step, jit_compile=settings.jit_compile and replicas == 1, autograph=False)

    def run(indices: Any, step_number: int) -> Any:
        return compiled(tf.constant(indices, tf.int32), tf.constant(step_number, tf.int64))

    return run
