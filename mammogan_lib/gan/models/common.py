"""Shared pieces of every architecture: resolution rules, filter scaling, output heads.

Every generator starts from an 8x8 feature map and doubles it once per block, so the number of
upsampling blocks follows the resolution (64 -> 3, 128 -> 4, 256 -> 5). Every discriminator halves
its input with the same number of stride-2 convolutions, so it always ends at 8x8 before ``Flatten``.

Imports keras at module top: the ``mammogan_lib.gan.models`` package is GAN-only (notebooks 03/04), and the
backend is pinned to TensorFlow by :func:`mammogan_lib.core.frameworks.import_keras`.
"""

from __future__ import annotations

from typing import Any

from mammogan_lib.core.frameworks import import_keras
from mammogan_lib.gan.models.layers import UpsampleConv2D

keras = import_keras()
layers = keras.layers

START_SIZE = 8
"""Side of the first generator feature map and of the last discriminator feature map."""

RESOLUTIONS: tuple[int, ...] = (64, 128, 256)
"""Supported training resolutions (square images)."""

LEAKY_SLOPE = 0.2
"""Negative slope of every LeakyReLU (thesis and DCGAN)."""


def check_resolution(resolution: int) -> int:
    """Return ``resolution`` if supported, else raise ``ValueError`` naming the supported ones."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution {resolution!r} is not supported; expected one of {RESOLUTIONS}")
    return resolution


def block_count(resolution: int) -> int:
    """Number of x2 blocks between 8x8 and ``resolution`` (64 -> 3, 128 -> 4, 256 -> 5)."""
    check_resolution(resolution)
    return (resolution // START_SIZE).bit_length() - 1


def scaled(filters: int, width: float) -> int:
    """``filters`` multiplied by ``width``, rounded, at least 1 (width 1.0 keeps the thesis's counts)."""
    if width <= 0:
        raise ValueError(f"width must be positive, got {width!r}")
    return max(1, int(round(filters * width)))


def check_dropout(rate: float) -> float:
    """Return ``rate`` if it is a valid dropout rate in [0, 1), else raise ``ValueError``."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate!r}")
    return rate


def upsample_conv(
    x: keras.KerasTensor, filters: int, conv_name: str, upsampling_name: str, separate: bool = False
) -> keras.KerasTensor:
    """x2 nearest upsampling, then ``Conv2D 3x3 'same'`` with ``filters``: ``(H, W, C) -> (2H, 2W, filters)``.

    One :class:`~mammogan_lib.gan.models.layers.UpsampleConv2D` layer named ``conv_name`` (the same function
    in
    4/9 of the arithmetic), or with ``separate=True`` the thesis's two layers, ``UpSampling2D`` named
    ``upsampling_name`` and ``Conv2D`` named ``conv_name`` (the benchmark's classic loop uses them). Both
    forms have the same variables, in the same order and under the same paths (``g_conv1/kernel``).
    """
    if separate:
        x = layers.UpSampling2D(name=upsampling_name)(x)  # (2H, 2W, C)
        return layers.Conv2D(filters, 3, padding="same", name=conv_name)(x)  # (2H, 2W, filters)
    return UpsampleConv2D(filters, name=conv_name)(x)  # (2H, 2W, filters)


def image_head(x: keras.KerasTensor) -> keras.KerasTensor:
    """Final ``Conv2D(1, 3x3, 'same')`` + tanh; the tanh layer is float32 even under mixed precision."""
    x = layers.Conv2D(1, 3, padding="same", name="g_out_conv")(x)  # (R, R, 1), pre-activation
    return layers.Activation("tanh", dtype="float32", name="g_out")(x)  # (R, R, 1) in [-1, 1], float32


def class_input(n_classes: int) -> keras.KerasTensor | None:
    """The class-label input ``(N,)`` int32 of a conditional model (``n_classes`` >= 1), else ``None``."""
    if n_classes < 0:
        raise ValueError(f"n_classes must be 0 (unconditional) or positive, got {n_classes!r}")
    return keras.Input((), dtype="int32", name="class") if n_classes else None


def conditioned_latent(
    z: keras.KerasTensor, label: keras.KerasTensor | None, n_classes: int, latent_dim: int
) -> keras.KerasTensor:
    """``z``, or for a conditional generator ``z`` joined with a learned embedding of its class:
    ``(latent_dim,) -> (2 * latent_dim,)``. Joined rather than added so the class is never confused with a
    direction of the latent space that the prior already draws."""
    if label is None:
        return z
    embedded = layers.Embedding(n_classes, latent_dim, name="g_class_embedding")(label)  # (latent_dim,)
    return layers.Concatenate(name="g_conditioned_z")([z, embedded])  # (2 * latent_dim,)


def model_inputs(z: keras.KerasTensor, label: keras.KerasTensor | None) -> keras.KerasTensor | list:
    """What a model is called with: ``z`` alone, or ``[z, class]`` for a conditional one."""
    return z if label is None else [z, label]


def with_class(x: Any, classes: Any) -> Any:
    """A model's inputs: ``x`` alone, or ``[x, classes]`` in a conditional run (``classes`` not None)."""
    return x if classes is None else [x, classes]
