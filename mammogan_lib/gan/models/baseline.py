"""exp3, the thesis's best generator (thesis 3.3): a DCGAN-style upsampling generator.

At resolution 128, width 1.0 (the thesis's model)::

    z (128,)
    Dense(8*8*256) -> Reshape            (8, 8, 256)
    4 x [UpSampling2D -> Conv2D 3x3 'same' -> BatchNormalization -> ReLU]
        128 filters                      (16, 16, 128)
        128 filters                      (32, 32, 128)
        128 filters                      (64, 64, 128)
         64 filters                      (128, 128, 64)
    Conv2D(1, 3x3, 'same') -> tanh       (128, 128, 1)

Filter schedule (:data:`GENERATOR_FILTERS`): the last block has 64 filters and every earlier one 128.
Resolution 64 therefore has (128, 128, 64) and resolution 256 one more 128-filter block,
(128, 128, 128, 128, 64): the extra block is added at the start, where the maps are small.
"""

from __future__ import annotations

from mammogan_lib.gan.models.common import (
    START_SIZE,
    block_count,
    class_input,
    conditioned_latent,
    image_head,
    keras,
    layers,
    model_inputs,
    scaled,
    upsample_conv,
)

INPUT_CHANNELS = 256
"""Channels of the 8x8 map the Dense layer is reshaped to."""


def generator_filters(resolution: int) -> tuple[int, ...]:
    """Filters of the upsampling blocks at ``resolution`` (width 1.0): 128 each, the last one 64."""
    return (128,) * (block_count(resolution) - 1) + (64,)


def upsampling_block(
    x: keras.KerasTensor, filters: int, index: int, separate_upsampling: bool = False
) -> keras.KerasTensor:
    """``UpSampling2D -> Conv2D 3x3 'same' -> BatchNormalization -> ReLU``: doubles H and W."""
    x = upsample_conv(x, filters, f"g_conv{index}", f"g_up{index}", separate_upsampling)  # (2H, 2W, filters)
    x = layers.BatchNormalization(name=f"g_bn{index}")(x)
    return layers.ReLU(name=f"g_relu{index}")(x)


def build_baseline_generator(
    resolution: int,
    latent_dim: int = 128,
    width: float = 1.0,
    separate_upsampling: bool = False,
    n_classes: int = 0,
) -> keras.Model:
    """The exp3 generator: latent ``(latent_dim,)`` -> image ``(resolution, resolution, 1)`` in [-1, 1].

    ``separate_upsampling``: build each ``UpSampling2D -> Conv2D`` pair as two layers, as the thesis wrote
    it, instead of one :class:`~mammogan_lib.gan.models.layers.UpsampleConv2D` (same function and weights).
    ``n_classes`` > 0: a conditional generator, called with ``[z, class]`` (class ``(N,)`` int32), whose
    Dense layer reads ``z`` joined with the class's learned embedding
    (:func:`~mammogan_lib.gan.models.common.conditioned_latent`).
    """
    channels = scaled(INPUT_CHANNELS, width)
    z = keras.Input((latent_dim,), name="z")
    label = class_input(n_classes)
    z_in = conditioned_latent(z, label, n_classes, latent_dim)  # (latent_dim,) or (2*latent_dim,)
    x = layers.Dense(START_SIZE * START_SIZE * channels, name="g_dense")(z_in)  # (8*8*256,)
    x = layers.Reshape((START_SIZE, START_SIZE, channels), name="g_reshape")(x)  # (8, 8, 256)
    for index, filters in enumerate(generator_filters(resolution), start=1):
        x = upsampling_block(x, scaled(filters, width), index, separate_upsampling)  # (8*2^i, 8*2^i, filters)
    return keras.Model(model_inputs(z, label), image_head(x), name="generator_baseline")
