"""The GAN's losses and regularisers, written once in ``keras.ops`` for the three backends' steps.

What :mod:`mammogan_lib.gan.training` describes: the thesis's binary cross-entropy on D's probabilities, the
hinge loss and the self-supervised discriminator's reconstruction (exp7), R1 on D's logit gradient at the
real images and LeCam's anchored penalty. A step runs the models its own way and gathers what D said in a
:class:`Judgement` (and, for R1, the input gradient, which each backend takes differently);
:func:`step_losses` turns it into both losses, the same on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mammogan_lib.core.frameworks import import_keras

LOSS_KEYS: tuple[str, ...] = ("d_loss", "g_loss", "d_real", "d_fake")
"""What a step returns: both losses, mean D(x) and mean D(G(z)) (before the update)."""

LECAM_DECAY = 0.99
"""Decay of LeCam's anchors, the moving averages of D's mean logit on real and on generated images."""


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


@dataclass(frozen=True)
class Judgement:
    """What the discriminator said of one step's images (before either update), as the losses need it."""

    d_real: Any  # D's probabilities on the real images it saw
    d_fake: Any  # ... and on the generated ones
    real_logits: Any = None  # the sigmoid's inputs (R1, LeCam, the hinge loss)
    fake_logits: Any = None
    input_gradients: Any = None  # R1: the gradient of D's logit sum w.r.t. the real images it saw
    rebuilt: Sequence[Any] = ()  # a self-supervised D's reconstructions of the real images (exp7) ...
    targets: Sequence[Any] = ()  # ... and the images they should equal


def step_losses(settings: Any, judged: Judgement, anchors: Any = None) -> tuple[Any, Any]:
    """``(d_loss, g_loss)`` of a step from ``judged``, for the settings' architecture and regularisers
    (``anchors``: LeCam's ``[a_real, a_fake]`` before the step).

    exp7 (``architecture: fastgan``): the hinge loss, D's plus its reconstruction loss. Every other
    architecture: the thesis's binary cross-entropy, G's non-saturating, D's plus R1 and LeCam where set.
    Sums are new tensors, never in place: torch's autograd keeps every operand."""
    if settings.architecture == "fastgan":
        d_loss, g_loss = hinge_losses(judged.real_logits, judged.fake_logits)
        weight = settings.d_reconstruction_weight
        d_loss = d_loss + reconstruction_loss(judged.rebuilt, judged.targets, weight)
        return d_loss, g_loss
    d_loss = binary_crossentropy(1.0, judged.d_real) + binary_crossentropy(0.0, judged.d_fake)
    if settings.r1_gamma:
        d_loss = d_loss + r1_from_gradients(judged.input_gradients, settings.r1_gamma)
    if settings.lecam_weight:
        penalty = lecam_penalty(judged.real_logits, judged.fake_logits, anchors, settings.lecam_weight)
        d_loss = d_loss + penalty
    return d_loss, binary_crossentropy(1.0, judged.d_fake)  # G's: non-saturating


def next_anchors(anchors: Any, logit_means: Any) -> Any:
    """LeCam's anchors after a step whose mean logits (:func:`mean_logits`) were ``logit_means``."""
    return LECAM_DECAY * anchors + (1 - LECAM_DECAY) * logit_means
