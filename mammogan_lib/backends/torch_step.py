"""The train step on the torch backend: Keras layers run eagerly, torch autograd takes the gradients.

One forward pass, ``fake = G(z)`` used by both losses; D's gradient is taken with the graph kept, then G's,
and only then do the two optimisers move (``torch.autograd.grad`` on the variables' torch tensors, as
Keras's own torch trainer differentiates them). R1's input gradient is a second ``autograd.grad`` with
``create_graph=True``, so its gradient w.r.t. D's weights is exact. The randomness is drawn on the host
(:func:`mammogan_lib.backends.host_draws`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mammogan_lib.augment import apply_augment, parse_policy
from mammogan_lib.backends import (
    LECAM_DECAY,
    assign_seed_states,
    binary_crossentropy,
    host_draws,
    lecam_penalty,
    mean_logits,
    r1_from_gradients,
    with_class,
)
from mammogan_lib.frameworks import import_keras
from mammogan_lib.seeding import seed_states


def cpu_reduced_precision_problem(dtype: str) -> str | None:
    """Why torch cannot train our models in ``dtype`` on the CPU here, or ``None`` when it can.

    Where oneDNN has no kernel for the dtype, torch takes its fallback convolution, whose weight gradient
    fails for a one-channel output in Keras's channels-last layout ("slow_conv2d: grad_weight must be
    contiguous"): the generators' last convolution. A probe of exactly that convolution tells, whatever
    torch version and CPU this is.
    """
    import torch

    ops = import_keras().ops
    images = torch.zeros((1, 8, 8, 2), dtype=getattr(torch, dtype), requires_grad=True)
    kernel = torch.zeros((3, 3, 2, 1), dtype=getattr(torch, dtype), requires_grad=True)
    try:
        torch.autograd.grad(ops.sum(ops.conv(images, kernel, padding="same")), kernel)
    except RuntimeError as error:
        return (
            f"torch {torch.__version__} cannot take a convolution's gradient in {dtype} on this CPU ({error})"
        )
    return None


def make_torch_step(trainer: Any) -> Any:
    """The step ``(indices, step number) -> [d_loss, g_loss, d_real, d_fake]`` of ``trainer`` (torch)."""
    import torch

    from mammogan_lib.models.discriminator import with_logits

    ops = import_keras().ops
    settings = trainer.settings
    generator, discriminator = trainer.generator, trainer.discriminator
    scored = with_logits(discriminator)  # the same D, its logits too
    g_opt, d_opt = trainer.g_optimizer, trainer.d_optimizer
    g_variables, d_variables = generator.trainable_variables, discriminator.trainable_variables
    states = seed_states(generator) + seed_states(discriminator)
    names = parse_policy(settings.augment_policy)
    size = tuple(int(side) for side in trainer.images.shape[1:3])
    conditional = trainer.class_labels is not None
    priors = trainer.class_labels.priors if conditional else None
    r1_gamma, lecam_weight, anchors = settings.r1_gamma, settings.lecam_weight, trainer.lecam_anchors

    def step(indices: np.ndarray, step_number: int) -> Any:
        draws = host_draws(
            settings.seed, step_number, len(indices), settings.latent_dim, priors, len(states), names, size
        )
        assign_seed_states(states, draws.seed_states)
        rows = torch.as_tensor(np.asarray(indices, np.int64), device=trainer.images.device)
        real = trainer.images[rows]  # (B, R, R, 1)
        real_classes = trainer.labels[rows] if conditional else None
        fake_classes = ops.convert_to_tensor(draws.fake_classes) if conditional else None
        fake = generator(with_class(ops.convert_to_tensor(draws.latents), fake_classes), training=True)
        real_seen = apply_augment(real, names, draws.augment_real)
        fake_seen = apply_augment(fake, names, draws.augment_fake)
        if r1_gamma:
            real_seen = real_seen.detach().requires_grad_(True)
        real_logits, d_real = scored(with_class(real_seen, real_classes), training=True)
        fake_logits, d_fake = scored(with_class(fake_seen, fake_classes), training=True)
        d_loss = binary_crossentropy(1.0, d_real) + binary_crossentropy(0.0, d_fake)
        if r1_gamma:
            (input_gradients,) = torch.autograd.grad(
                ops.sum(ops.cast(real_logits, "float32")), real_seen, create_graph=True
            )
            d_loss = d_loss + r1_from_gradients(input_gradients, r1_gamma)
        if lecam_weight:
            d_loss = d_loss + lecam_penalty(real_logits, fake_logits, anchors.value, lecam_weight)
        g_loss = binary_crossentropy(1.0, d_fake)  # non-saturating
        d_grads = torch.autograd.grad(
            d_opt.scale_loss(d_loss), [v.value for v in d_variables], retain_graph=True
        )
        g_grads = torch.autograd.grad(g_opt.scale_loss(g_loss), [v.value for v in g_variables])
        with torch.no_grad():
            d_opt.apply(list(d_grads), d_variables)
            g_opt.apply(list(g_grads), g_variables)
            if lecam_weight:  # after the step, which used the earlier anchors
                means = mean_logits(real_logits, fake_logits)
                anchors.assign(LECAM_DECAY * anchors.value + (1 - LECAM_DECAY) * means)
            return torch.stack([d_loss, g_loss, ops.mean(d_real), ops.mean(d_fake)]).detach()

    return step
