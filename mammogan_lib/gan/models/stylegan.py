"""exp2, the StyleGAN-like generator (thesis 4.2.2): mapping network, constant input, noise, AdaIN.

At resolution 128, width 1.0::

    z (128,)
    mapping: 4 x [Dense(128) -> LeakyReLU(0.2)]           w (128,)      (nested model "g_mapping")
    LearnedConstant (from w's batch size)                  (8, 8, 256)
    NoiseInjection -> AdaIN(w)                             (8, 8, 256)
    4 x [UpSampling2D -> Conv2D 3x3 'same' -> NoiseInjection -> LeakyReLU(0.2) -> AdaIN(w)]
        128 filters                                        (16, 16, 128)
        128 filters                                        (32, 32, 128)
        128 filters                                        (64, 64, 128)
         64 filters                                        (128, 128, 64)
    Conv2D(1, 3x3, 'same') -> tanh                         (128, 128, 1)

The synthesis part keeps the baseline's filter schedule (:func:`baseline.generator_filters`) so exp2
differs from exp3 by the style mechanism, not by capacity. Within a block the order is StyleGAN's
(conv -> noise -> activation -> AdaIN): AdaIN comes last so the style sets each block's output statistics.
Like every generator here, the model maps a latent ``z`` to an image; ``w`` stays internal.
"""

from __future__ import annotations

from mammogan_lib.gan.models.baseline import INPUT_CHANNELS, generator_filters
from mammogan_lib.gan.models.common import (
    LEAKY_SLOPE,
    START_SIZE,
    class_input,
    conditioned_latent,
    image_head,
    keras,
    layers,
    model_inputs,
    scaled,
    upsample_conv,
)
from mammogan_lib.gan.models.layers import AdaIN, LearnedConstant, NoiseInjection

MAPPING_LAYERS = 4


def build_mapping_network(latent_dim: int, input_dim: int | None = None) -> keras.Model:
    """``MAPPING_LAYERS`` x [Dense(latent_dim) -> LeakyReLU(0.2)]: latent ``z`` (``input_dim`` long, default
    ``latent_dim``; a conditional generator's ``z`` joined with its class embedding) -> style ``w``."""
    z = keras.Input((input_dim or latent_dim,), name="z")
    w = z
    for index in range(1, MAPPING_LAYERS + 1):
        w = layers.Dense(latent_dim, name=f"g_map_dense{index}")(w)  # (latent_dim,)
        w = layers.LeakyReLU(LEAKY_SLOPE, name=f"g_map_lrelu{index}")(w)
    return keras.Model(z, w, name="g_mapping")


def style_block(
    x: keras.KerasTensor, w: keras.KerasTensor, filters: int, index: int, separate_upsampling: bool = False
) -> keras.KerasTensor:
    """``UpSampling2D -> Conv2D 3x3 -> NoiseInjection -> LeakyReLU -> AdaIN(w)``: doubles H and W."""
    x = upsample_conv(x, filters, f"g_conv{index}", f"g_up{index}", separate_upsampling)  # (2H, 2W, filters)
    x = NoiseInjection(name=f"g_noise{index}")(x)
    x = layers.LeakyReLU(LEAKY_SLOPE, name=f"g_lrelu{index}")(x)
    return AdaIN(name=f"g_adain{index}")([x, w])


def build_stylegan_generator(
    resolution: int,
    latent_dim: int = 128,
    width: float = 1.0,
    separate_upsampling: bool = False,
    n_classes: int = 0,
) -> keras.Model:
    """The exp2 generator: latent ``(latent_dim,)`` -> image ``(resolution, resolution, 1)`` in [-1, 1]
    (``separate_upsampling``: see :func:`~mammogan_lib.gan.models.baseline.build_baseline_generator`).

    ``n_classes`` > 0: called with ``[z, class]``; the mapping network reads ``z`` joined with the class's
    learned embedding, so the class reaches every block through the style ``w``."""
    z = keras.Input((latent_dim,), name="z")
    label = class_input(n_classes)
    z_in = conditioned_latent(z, label, n_classes, latent_dim)  # (latent_dim,) or (2*latent_dim,)
    w = build_mapping_network(latent_dim, z_in.shape[-1])(z_in)  # (latent_dim,)
    x = LearnedConstant(START_SIZE, scaled(INPUT_CHANNELS, width), name="g_const")(w)  # (8, 8, 256)
    x = NoiseInjection(name="g_noise0")(x)
    x = AdaIN(name="g_adain0")([x, w])  # (8, 8, 256)
    for index, filters in enumerate(generator_filters(resolution), start=1):
        x = style_block(x, w, scaled(filters, width), index, separate_upsampling)  # (8*2^i, 8*2^i, filters)
    return keras.Model(model_inputs(z, label), image_head(x), name="generator_stylegan")
