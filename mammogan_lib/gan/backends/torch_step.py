"""The train step on the torch backend: Keras layers run eagerly, torch autograd takes the gradients.

One forward pass, ``fake = G(z)`` used by both losses; D's gradient is taken with the graph kept, then G's,
and only then do the two optimisers move (``torch.autograd.grad`` on the variables' torch tensors, as
Keras's own torch trainer differentiates them). R1's input gradient is a second ``autograd.grad`` with
``create_graph=True``, so its gradient w.r.t. D's weights is exact. The randomness is drawn on the host
(:func:`mammogan_lib.gan.seeding.host_draws`).
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


def make_torch_step(trainer: Any) -> Any:
    """The step ``(indices, step number) -> [d_loss, g_loss, d_real, d_fake]`` of ``trainer`` (torch)."""
    import torch

    ops = import_keras().ops
    settings = trainer.settings
    generator, discriminator = trainer.generator, trainer.discriminator
    fastgan = settings.architecture == "fastgan"
    scored = discriminator if fastgan else with_logits(discriminator)  # the same D, its logits too
    if fastgan:
        judged = logits_model(discriminator)  # D without its decoders, for the generated images
        rebuilt_side = reconstruction_size(settings.resolution)
    g_opt, d_opt = trainer.g_optimizer, trainer.d_optimizer
    g_variables, d_variables = generator.trainable_variables, discriminator.trainable_variables
    states = seed_states(generator) + seed_states(discriminator)
    names = parse_policy(settings.augment_policy)
    conditional = trainer.class_labels is not None
    r1_gamma, lecam_weight, anchors = settings.r1_gamma, settings.lecam_weight, trainer.lecam_anchors

    def judgement_of(real_seen: Any, fake_seen: Any, real_classes: Any, fake_classes: Any) -> Judgement:
        """D's logits and probabilities, and for R1 the input gradient of its logits on the real images
        (kept in the graph, so that R1's gradient w.r.t. D's weights is exact)."""
        if r1_gamma:
            real_seen = real_seen.detach().requires_grad_(True)
        real_logits, d_real = scored(with_class(real_seen, real_classes), training=True)
        fake_logits, d_fake = scored(with_class(fake_seen, fake_classes), training=True)
        input_gradients = None
        if r1_gamma:
            (input_gradients,) = torch.autograd.grad(
                ops.sum(ops.cast(real_logits, "float32")), real_seen, create_graph=True
            )
        return Judgement(d_real, d_fake, real_logits, fake_logits, input_gradients)

    def fastgan_judgement(real_seen: Any, fake_seen: Any, quadrants: Any) -> Judgement:
        """exp7's D on the real images (logits and reconstructions), and without its decoders on the
        generated ones."""
        real_logits, whole, part = discriminator([real_seen, quadrants], training=True)
        fake_logits = judged(fake_seen, training=True)
        targets = [resized(real_seen, rebuilt_side), resized(quadrant_of(real_seen, quadrants), rebuilt_side)]
        d_real, d_fake = ops.sigmoid(real_logits), ops.sigmoid(fake_logits)
        return Judgement(d_real, d_fake, real_logits, fake_logits, rebuilt=[whole, part], targets=targets)

    def step(indices: np.ndarray, step_number: int) -> Any:
        draws = step_draws(trainer, step_number, len(indices), len(states))
        assign_seed_states(states, draws.seed_states)
        rows = torch.as_tensor(np.asarray(indices, np.int64), device=trainer.images.device)
        real = trainer.images[rows]  # (B, R, R, 1)
        real_classes = trainer.labels[rows] if conditional else None
        fake_classes = ops.convert_to_tensor(draws.fake_classes) if conditional else None
        fake = generator(with_class(ops.convert_to_tensor(draws.latents), fake_classes), training=True)
        real_seen = apply_augment(real, names, draws.augment_real)
        fake_seen = apply_augment(fake, names, draws.augment_fake)
        if fastgan:
            judgement = fastgan_judgement(real_seen, fake_seen, ops.convert_to_tensor(draws.quadrants))
        else:
            judgement = judgement_of(real_seen, fake_seen, real_classes, fake_classes)
        d_loss, g_loss = step_losses(settings, judgement, anchors.value)
        d_grads = torch.autograd.grad(
            d_opt.scale_loss(d_loss), [v.value for v in d_variables], retain_graph=True
        )
        g_grads = torch.autograd.grad(g_opt.scale_loss(g_loss), [v.value for v in g_variables])
        real_logits, fake_logits = judgement.real_logits, judgement.fake_logits
        d_real, d_fake = judgement.d_real, judgement.d_fake
        with torch.no_grad():
            d_opt.apply(list(d_grads), d_variables)
            g_opt.apply(list(g_grads), g_variables)
            if lecam_weight:  # after the step, which used the earlier anchors
                means = mean_logits(real_logits, fake_logits)
                anchors.assign(next_anchors(anchors.value, means))
            return torch.stack([d_loss, g_loss, ops.mean(d_real), ops.mean(d_fake)]).detach()

    return step
