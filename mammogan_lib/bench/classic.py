"""The classic Keras GAN loop (Keras-GAN style) on our models: the benchmark's reference (a)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ClassicLoop:
    """The classic Keras GAN loop (Keras-GAN style) on our models: call :meth:`step` once per iteration."""

    generator: Any
    discriminator: Any
    combined: Any
    images: np.ndarray  # (N, R, R, 1) float32, in host memory as those scripts kept it
    batch_size: int
    latent_dim: int
    rng: np.random.Generator

    def step(self) -> tuple[float, float, float]:
        """One iteration: D on a real batch, D on ``G.predict(z)``, then G through the frozen D.

        In Keras 2 a model's trainability was frozen at ``compile``, so ``D.trainable = False`` before
        compiling the combined model was enough. Keras 3 reads ``trainable`` when a train function is
        first traced, so the Keras 3 form of the same loop sets ``D.trainable`` before each kind of update
        (otherwise D would never learn); the flag only selects which variables a traced function updates,
        and no function is retraced after the first iteration.
        """
        ones = np.ones((self.batch_size, 1), np.float32)
        real = self.images[self.rng.integers(0, len(self.images), self.batch_size)]
        self.discriminator.trainable = True
        d_loss_real = self.discriminator.train_on_batch(real, ones)
        z = self.rng.normal(size=(self.batch_size, self.latent_dim)).astype(np.float32)
        fake = self.generator.predict(z, batch_size=self.batch_size, verbose=0)
        d_loss_fake = self.discriminator.train_on_batch(fake, np.zeros_like(ones))
        self.discriminator.trainable = False
        g_loss = self.combined.train_on_batch(z, ones)
        return float(d_loss_real), float(d_loss_fake), float(g_loss)


def build_classic_loop(images: np.ndarray, settings: Any) -> ClassicLoop:
    """G and D from our builders in the thesis's layers (``UpSampling2D`` + ``Conv2D``), float32; D
    compiled with Adam(lr_d, beta1) and BCE; ``combined = D(G(z))`` compiled with Adam(lr_g, beta1) and BCE
    while D is frozen (the textbook order)."""
    from mammogan_lib.core.frameworks import import_keras
    from mammogan_lib.gan.models import build_models

    keras = import_keras()
    keras.utils.set_random_seed(settings.seed)
    generator, discriminator = build_models(
        settings.architecture,
        settings.resolution,
        settings.latent_dim,
        settings.width,
        settings.d_dropout,
        separate_upsampling=True,
    )
    discriminator.compile(
        optimizer=keras.optimizers.Adam(settings.lr_d, beta_1=settings.beta1), loss="binary_crossentropy"
    )
    discriminator.trainable = False
    z = keras.Input((settings.latent_dim,), name="z")
    combined = keras.Model(z, discriminator(generator(z)), name="combined")
    combined.compile(
        optimizer=keras.optimizers.Adam(settings.lr_g, beta_1=settings.beta1), loss="binary_crossentropy"
    )
    return ClassicLoop(
        generator,
        discriminator,
        combined,
        images[..., None],
        settings.batch_size,
        settings.latent_dim,
        np.random.default_rng(settings.seed),
    )
