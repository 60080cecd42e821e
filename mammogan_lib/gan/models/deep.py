"""exp1, the deeper generator (thesis 4.2.1): wider start, two convolutions per upsampling stage.

At resolution 128, width 1.0::

    z (128,)
    Dense(8*8*512) -> Reshape            (8, 8, 512)
    4 stages of UpSampling2D -> 2 x [Conv2D 3x3 'same' -> LeakyReLU(0.2) -> BatchNormalization]
        256 filters                      (16, 16, 256)
        128 filters                      (32, 32, 128)
         64 filters                      (64, 64, 64)
         32 filters                      (128, 128, 32)
    Conv2D(1, 3x3, 'same') -> tanh       (128, 128, 1)

Filter schedule (:data:`generator_filters`): the channels halve at every stage from the 512 of the input
map, 512 -> 256 -> 128 -> 64 -> 32, whatever the resolution: 64 has (256, 128, 64) and 256 adds a
16-filter stage, (256, 128, 64, 32, 16). ``CONVS_PER_STAGE`` (2) convolutions follow each upsampling; the
thesis says "repeated" blocks without a number, 2 is the smallest repetition.
"""

from __future__ import annotations

from mammogan_lib.gan.models.common import (
    LEAKY_SLOPE,
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

INPUT_CHANNELS = 512
CONVS_PER_STAGE = 2


def generator_filters(resolution: int) -> tuple[int, ...]:
    """Filters of each stage at ``resolution`` (width 1.0): half of the previous stage's, from 512."""
    return tuple(INPUT_CHANNELS >> stage for stage in range(1, block_count(resolution) + 1))


def conv_block(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """``Conv2D 3x3 'same' -> LeakyReLU(0.2) -> BatchNormalization`` (keeps H and W)."""
    return activation_and_norm(layers.Conv2D(filters, 3, padding="same", name=f"g_conv{name}")(x), name)


def activation_and_norm(x: keras.KerasTensor, name: str) -> keras.KerasTensor:
    """``LeakyReLU(0.2) -> BatchNormalization``, the second half of a conv block."""
    x = layers.LeakyReLU(LEAKY_SLOPE, name=f"g_lrelu{name}")(x)
    return layers.BatchNormalization(name=f"g_bn{name}")(x)


def upsampling_stage(
    x: keras.KerasTensor, filters: int, index: int, separate_upsampling: bool = False
) -> keras.KerasTensor:
    """``UpSampling2D`` then ``CONVS_PER_STAGE`` conv blocks: doubles H and W (the upsampling and the first
    block's convolution are one :func:`~mammogan_lib.gan.models.common.upsample_conv`)."""
    first = f"{index}_1"
    x = upsample_conv(x, filters, f"g_conv{first}", f"g_up{index}", separate_upsampling)  # (2H, 2W, filters)
    x = activation_and_norm(x, first)
    for repeat in range(2, CONVS_PER_STAGE + 1):
        x = conv_block(x, filters, f"{index}_{repeat}")  # (2H, 2W, filters)
    return x


def build_deep_generator(
    resolution: int,
    latent_dim: int = 128,
    width: float = 1.0,
    separate_upsampling: bool = False,
    n_classes: int = 0,
) -> keras.Model:
    """The exp1 generator: latent ``(latent_dim,)`` -> image ``(resolution, resolution, 1)`` in [-1, 1]
    (``separate_upsampling``, ``n_classes``: see
    :func:`~mammogan_lib.gan.models.baseline.build_baseline_generator`)."""
    channels = scaled(INPUT_CHANNELS, width)
    z = keras.Input((latent_dim,), name="z")
    label = class_input(n_classes)
    z_in = conditioned_latent(z, label, n_classes, latent_dim)  # (latent_dim,) or (2*latent_dim,)
    x = layers.Dense(START_SIZE * START_SIZE * channels, name="g_dense")(z_in)  # (8*8*512,)
    x = layers.Reshape((START_SIZE, START_SIZE, channels), name="g_reshape")(x)  # (8, 8, 512)
    for index, filters in enumerate(generator_filters(resolution), start=1):
        x = upsampling_stage(x, scaled(filters, width), index, separate_upsampling)  # (8*2^i, 8*2^i, filters)
    return keras.Model(model_inputs(z, label), image_head(x), name="generator_deep")
