"""The models of progressive-resolution training (Karras et al. 2018): each stage is part of the final model.

Training grows G and D one block pair at a time, e.g. 64 -> 128. A stage's models are made of the **final**
model's layers, under the final model's names, so growing only adds layers and the models of the last
stage, once the new block is faded in, *are* the ordinary models
(:func:`mammogan_lib.gan.models.build_models`,
same layers, names and weight files). At final resolution 128, width 1.0, the baseline (exp3)::

    stage 64   G: z -> g_dense -> (8, 8, 256) -> g_conv1..3 (128, 128, 128) -> g_out_conv_64 + tanh
               D: image (64, 64, 1) -> d_from_image_64 (1x1, 32) -> d_conv2..4 (64, 128, 256) -> d_dense
    stage 128  the ordinary exp3 G and D (g_conv4 with 64 filters, g_out_conv; d_conv1 reads the image)

G's lower stages use the final G's *first* blocks (the generator's filter schedule is the final one's:
128-filter blocks, the 64-filter block last) with a to-image head of their own (``g_out_conv_<R>``, a
3x3 convolution + tanh); D's lower stages use the final D's *last* blocks behind a from-image 1x1
convolution (``d_from_image_<R>``, ProGAN's fromRGB) giving the channels the first of them reads.

While a new block fades in (ProGAN's transition), with ``a`` going 0 -> 1::

    G: image = (1 - a) * upsample(old_head(x)) + a * new_head(new_block(x))        x: the old last block's map
    D: x     = (1 - a) * old_from_image(avgpool(image)) + a * new_block(new_from_image(image))

(at the final resolution the new D block is ``d_conv1`` on the image itself). ``a`` is the non-trainable
weight of a :class:`FadeIn` layer (``g_fade``, ``d_fade``) that the trainer assigns before every step.

Only ``architecture: baseline`` is built this way; the config refuses the others with progressive training.
"""

from __future__ import annotations

from mammogan_lib.core.config import PROGRESSIVE_ARCHITECTURES
from mammogan_lib.gan.models.baseline import INPUT_CHANNELS, generator_filters, upsampling_block
from mammogan_lib.gan.models.common import (
    LEAKY_SLOPE,
    RESOLUTIONS,
    START_SIZE,
    block_count,
    check_dropout,
    check_resolution,
    class_input,
    conditioned_latent,
    image_head,
    keras,
    layers,
    model_inputs,
    scaled,
)
from mammogan_lib.gan.models.discriminator import (
    discriminator_filters,
    downsampling_block,
    spectrally_normalised,
)
from mammogan_lib.gan.models.layers import FadeIn
from mammogan_lib.gan.models.registry import build_models

GENERATOR_NAME = "generator_baseline"
DISCRIMINATOR_NAME = "discriminator"
"""Every stage's models carry the ordinary models' names, so their variables' paths (and the optimisers'
slot names derived from them) are the same in every stage."""


def check_stage(resolution: int, final_resolution: int) -> None:
    """``ValueError`` unless ``resolution`` is a supported resolution at most ``final_resolution``."""
    check_resolution(resolution)
    check_resolution(final_resolution)
    if resolution > final_resolution:
        raise ValueError(f"stage resolution {resolution} is above the final resolution {final_resolution}")


def generator_head(x: keras.KerasTensor, resolution: int, final_resolution: int) -> keras.KerasTensor:
    """The to-image head at ``resolution``: the ordinary ``g_out_conv``/``g_out`` at the final resolution,
    else ``g_out_conv_<R>``/``g_out_<R>`` (3x3 conv + tanh, float32)."""
    if resolution == final_resolution:
        return image_head(x)
    x = layers.Conv2D(1, 3, padding="same", name=f"g_out_conv_{resolution}")(x)  # (R, R, 1)
    return layers.Activation("tanh", dtype="float32", name=f"g_out_{resolution}")(x)  # in [-1, 1]


def build_stage_generator(
    resolution: int,
    final_resolution: int,
    fading: bool,
    latent_dim: int = 128,
    width: float = 1.0,
    separate_upsampling: bool = False,
    n_classes: int = 0,
) -> keras.Model:
    """The baseline generator of the stage at ``resolution`` of a run growing to ``final_resolution``:
    latent -> ``(resolution, resolution, 1)``; ``fading``: with the new block faded in over the previous
    stage's head (``g_fade``)."""
    check_stage(resolution, final_resolution)
    if fading and resolution // 2 not in RESOLUTIONS:
        raise ValueError(f"a stage at {resolution} has no supported earlier stage to fade from")
    filters = generator_filters(final_resolution)  # the final model's schedule
    blocks = block_count(resolution)
    channels = scaled(INPUT_CHANNELS, width)
    z = keras.Input((latent_dim,), name="z")
    label = class_input(n_classes)
    z_in = conditioned_latent(z, label, n_classes, latent_dim)
    x = layers.Dense(START_SIZE * START_SIZE * channels, name="g_dense")(z_in)  # (8*8*256,)
    x = layers.Reshape((START_SIZE, START_SIZE, channels), name="g_reshape")(x)  # (8, 8, 256)
    for index in range(1, blocks):
        x = upsampling_block(x, scaled(filters[index - 1], width), index, separate_upsampling)
    previous = x  # (R/2, R/2, C): the last block of the previous stage
    x = upsampling_block(previous, scaled(filters[blocks - 1], width), blocks, separate_upsampling)
    image = generator_head(x, resolution, final_resolution)  # (R, R, 1)
    if fading:
        old = generator_head(previous, resolution // 2, final_resolution)  # (R/2, R/2, 1)
        old = layers.UpSampling2D(name=f"g_fade_up_{resolution}")(old)  # (R, R, 1)
        image = FadeIn(dtype="float32", name="g_fade")([old, image])
    return keras.Model(model_inputs(z, label), image, name=GENERATOR_NAME)


def from_image(
    image: keras.KerasTensor, channels: int, resolution: int, spectral_norm: bool
) -> keras.KerasTensor:
    """ProGAN's fromRGB at ``resolution``: ``Conv2D 1x1 -> LeakyReLU(0.2)``, ``(R, R, 1) -> (R, R, C)``."""
    conv = layers.Conv2D(channels, 1, name=f"d_from_image_{resolution}")
    x = spectrally_normalised(conv, spectral_norm)(image)
    return layers.LeakyReLU(LEAKY_SLOPE, name=f"d_from_image_lrelu_{resolution}")(x)


def build_stage_discriminator(
    resolution: int,
    final_resolution: int,
    fading: bool,
    dropout: float,
    width: float = 1.0,
    spectral_norm: bool = False,
    n_classes: int = 0,
) -> keras.Model:
    """The discriminator of the stage at ``resolution`` of a run growing to ``final_resolution``: image
    ``(resolution, resolution, 1)`` -> probability; ``fading``: the new block faded in over the previous
    stage's from-image path (``d_fade``)."""
    check_stage(resolution, final_resolution)
    check_dropout(dropout)
    filters = [scaled(f, width) for f in discriminator_filters(final_resolution)]
    first = block_count(final_resolution) - block_count(resolution) + 1  # the final D's block it starts at
    image = keras.Input((resolution, resolution, 1), name="image")
    label = class_input(n_classes)

    def block(x: keras.KerasTensor, index: int) -> keras.KerasTensor:
        return downsampling_block(x, filters[index - 1], dropout, index, spectral_norm)

    x = image if first == 1 else from_image(image, filters[first - 2], resolution, spectral_norm)
    x = block(x, first)  # (R/2, R/2, C)
    if fading:
        old = layers.AveragePooling2D(2, name=f"d_fade_down_{resolution}")(image)  # (R/2, R/2, 1)
        old = from_image(old, filters[first - 1], resolution // 2, spectral_norm)  # (R/2, R/2, C)
        x = FadeIn(name="d_fade")([old, x])
    for index in range(first + 1, len(filters) + 1):
        x = block(x, index)  # ends at (8, 8, C_last), as the final D
    features = layers.Flatten(name="d_flatten")(x)
    x = spectrally_normalised(layers.Dense(1, name="d_dense"), spectral_norm)(features)  # (1,) logit
    if label is not None:
        embedded = layers.Embedding(n_classes, features.shape[-1], name="d_class_projection")(label)
        projection = layers.Dot(axes=1, name="d_projection")([embedded, features])
        x = layers.Add(name="d_logit")([x, projection])
    probability = layers.Activation("sigmoid", dtype="float32", name="d_out")(x)
    inputs = image if label is None else [image, label]
    return keras.Model(inputs, probability, name=DISCRIMINATOR_NAME)


def build_stage_models(
    architecture: str,
    resolution: int,
    final_resolution: int,
    fading: bool,
    latent_dim: int = 128,
    width: float = 1.0,
    d_dropout: float | None = None,
    separate_upsampling: bool = False,
    d_spectral_norm: bool = False,
    n_classes: int = 0,
) -> tuple[keras.Model, keras.Model]:
    """``(generator, discriminator)`` of one stage (and phase: ``fading`` or not); the final stage, faded
    in, is exactly :func:`mammogan_lib.gan.models.build_models` at ``final_resolution``."""
    if architecture not in PROGRESSIVE_ARCHITECTURES:
        raise ValueError(
            f"progressive training supports architecture {list(PROGRESSIVE_ARCHITECTURES)}, "
            f"not {architecture!r}"
        )
    if resolution == final_resolution and not fading:
        return build_models(
            architecture,
            final_resolution,
            latent_dim,
            width,
            d_dropout,
            separate_upsampling,
            d_spectral_norm,
            n_classes,
        )
    rate = 0.2 if d_dropout is None else d_dropout
    generator = build_stage_generator(
        resolution, final_resolution, fading, latent_dim, width, separate_upsampling, n_classes
    )
    discriminator = build_stage_discriminator(
        resolution, final_resolution, fading, rate, width, d_spectral_norm, n_classes
    )
    return generator, discriminator


def fade_layers(model: keras.Model) -> list[FadeIn]:
    """The model's :class:`FadeIn` layers (none outside a fade)."""
    return [layer for layer in model.layers if isinstance(layer, FadeIn)]


def at_resolution(generator: keras.Model, resolution: int) -> keras.Model:
    """``generator``, or a model that upsamples its images (nearest) to ``resolution``: an earlier stage's
    checkpoint then gives images of the run's resolution (with no detail above the stage's own)."""
    size = generator.output.shape[1]
    if size == resolution:
        return generator
    upsampled = layers.UpSampling2D(resolution // size, name="g_stage_upsample")(generator.output)
    return keras.Model(generator.input, upsampled, name=f"{generator.name}_at_{resolution}")
