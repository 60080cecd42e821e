"""Shared pieces of every architecture: resolution rules, filter scaling, output heads.

Every generator starts from an 8x8 feature map and doubles it once per block, so the number of
upsampling blocks follows the resolution (64 -> 3, 128 -> 4, 256 -> 5). Every discriminator halves
its input with the same number of stride-2 convolutions, so it always ends at 8x8 before ``Flatten``.

Imports keras at module top: the ``mammogan_lib.models`` package is GAN-only (notebooks 03/04), and the
backend is pinned to TensorFlow by :func:`mammogan_lib.frameworks.import_keras`.
"""

from __future__ import annotations

from mammogan_lib.frameworks import import_keras

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


def image_head(x: keras.KerasTensor) -> keras.KerasTensor:
    """Final ``Conv2D(1, 3x3, 'same')`` + tanh; the tanh layer is float32 even under mixed precision."""
    x = layers.Conv2D(1, 3, padding="same", name="g_out_conv")(x)  # (R, R, 1), pre-activation
    return layers.Activation("tanh", dtype="float32", name="g_out")(x)  # (R, R, 1) in [-1, 1], float32
