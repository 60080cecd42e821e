"""The one place an ``architecture`` name becomes models: ``baseline`` (exp3), ``deep`` (exp1), ``stylegan``
(exp2), ``fastgan`` (exp7).

The thesis's three share the discriminator and differ in the generator and the discriminator's dropout (0.2
for the thesis's best, exp3; 0.3 for exp1 and exp2). ``fastgan`` has its own self-supervised discriminator
(:mod:`mammogan_lib.gan.models.fastgan`), no dropout, and its own step's losses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mammogan_lib.gan.models.baseline import build_baseline_generator
from mammogan_lib.gan.models.common import keras
from mammogan_lib.gan.models.deep import build_deep_generator
from mammogan_lib.gan.models.discriminator import build_discriminator_model
from mammogan_lib.gan.models.fastgan import build_fastgan_discriminator, build_fastgan_generator
from mammogan_lib.gan.models.stylegan import build_stylegan_generator


@dataclass(frozen=True)
class Architecture:
    """A generator builder ``(resolution, latent_dim, width, separate_upsampling, n_classes) -> Model``, the
    default D dropout, and where D is not the thesis's, its builder ``(resolution, width, spectral_norm) ->
    Model``."""

    build_generator: Callable[[int, int, float, bool, int], keras.Model]
    d_dropout: float
    thesis_section: str
    build_own_discriminator: Callable[[int, float, bool], keras.Model] | None = None


ARCHITECTURES: dict[str, Architecture] = {
    "baseline": Architecture(build_baseline_generator, d_dropout=0.2, thesis_section="3.3 (exp3)"),
    "deep": Architecture(build_deep_generator, d_dropout=0.3, thesis_section="4.2.1 (exp1)"),
    "stylegan": Architecture(build_stylegan_generator, d_dropout=0.3, thesis_section="4.2.2 (exp2)"),
    "fastgan": Architecture(
        build_fastgan_generator,
        d_dropout=0.0,
        thesis_section="beyond the thesis (exp7; Liu et al. 2021)",
        build_own_discriminator=build_fastgan_discriminator,
    ),
}


def get_architecture(architecture: str) -> Architecture:
    """The registry entry for ``architecture``; ``ValueError`` naming the known ones otherwise."""
    try:
        return ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"unknown architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}"
        ) from None


def build_generator(
    architecture: str,
    resolution: int,
    latent_dim: int = 128,
    width: float = 1.0,
    separate_upsampling: bool = False,
    n_classes: int = 0,
) -> keras.Model:
    """Generator of ``architecture``: ``(N, latent_dim)`` -> ``(N, resolution, resolution, 1)`` in [-1, 1].

    ``separate_upsampling=True`` builds every ``UpSampling2D -> Conv2D`` as the thesis's two layers instead
    of one ``UpsampleConv2D`` (the same function and weights; the benchmark's classic loop uses it).
    ``n_classes`` > 0: a class-conditional generator, called with ``[z, class]`` (class ``(N,)`` int32).
    """
    build = get_architecture(architecture).build_generator
    return build(resolution, latent_dim, width, separate_upsampling, n_classes)


def build_discriminator(
    architecture: str,
    resolution: int,
    width: float = 1.0,
    dropout: float | None = None,
    spectral_norm: bool = False,
    n_classes: int = 0,
) -> keras.Model:
    """Discriminator for ``architecture``: ``(N, R, R, 1)`` -> ``(N, 1)`` probabilities (float32).

    ``dropout`` defaults to the architecture's thesis value (0.2 baseline, 0.3 deep and stylegan);
    ``spectral_norm`` wraps its convolutions and dense layer in
    :class:`~mammogan_lib.gan.models.layers.SpectralNorm`; ``n_classes`` > 0 makes it a projection
    discriminator
    called with ``[image, class]``.
    """
    entry = get_architecture(architecture)
    rate = entry.d_dropout if dropout is None else dropout
    if entry.build_own_discriminator is not None:
        if rate or n_classes:
            raise ValueError(
                f"architecture {architecture!r}'s discriminator has no dropout and no class-conditional form "
                f"(got dropout {rate}, n_classes {n_classes})"
            )
        return entry.build_own_discriminator(resolution, width, spectral_norm)
    return build_discriminator_model(resolution, rate, width, spectral_norm, n_classes)


def build_models(
    architecture: str,
    resolution: int,
    latent_dim: int = 128,
    width: float = 1.0,
    d_dropout: float | None = None,
    separate_upsampling: bool = False,
    d_spectral_norm: bool = False,
    n_classes: int = 0,
) -> tuple[keras.Model, keras.Model]:
    """``(generator, discriminator)`` for ``architecture`` at ``resolution`` (``separate_upsampling``: see
    :func:`build_generator`; ``d_spectral_norm``: see :func:`build_discriminator`; ``n_classes`` > 0: both
    class-conditional)."""
    generator = build_generator(architecture, resolution, latent_dim, width, separate_upsampling, n_classes)
    discriminator = build_discriminator(
        architecture, resolution, width, d_dropout, d_spectral_norm, n_classes
    )
    return generator, discriminator
