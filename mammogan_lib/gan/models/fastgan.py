"""exp7, a FastGAN-style GAN for few images: Liu, Zhu, Song & Elgammal, "Towards Faster and Stabilized GAN
Training for High-fidelity Few-shot Image Synthesis", ICLR 2021 (arXiv:2101.04775).

FastGAN trains on 100-1,000 images in hours on one GPU with two ideas, both here:

- **Skip-layer excitation (SLE)** in the generator: a low-resolution feature map gates the channels of a
  map sixteen times wider (4x4 -> 64x64, 8x8 -> 128x128),
  ``big * sigmoid(conv1x1(swish(conv4x4(avgpool_to_4x4(small)))))``, a shortcut through the depth of the
  generator at the cost of a channel-wise product. D has it too, from a map eight times wider.
- **A self-supervised discriminator**: besides its real/fake logits, D's features of a *real* image must be
  decodable back into it by small decoders (the whole image from D's 8x8 features, a random quadrant from
  one quadrant of its 16x16 features), so D learns features that describe the image instead of only those
  that tell the few training images from the generator's (the reconstruction loss of
  :func:`mammogan_lib.gan.losses.reconstruction_loss`).

Trained with the hinge loss and DiffAugment (the experiment file's ``augment_policy``).

At resolution 128, width 1.0 (the paper's ngf = ndf = 64; a layer's channels are
``int(multiplier[size] * 64 * width)``)::

    G: z (latent_dim,) -> Dense -> (4, 4, 2048) -> BN -> GLU        (4, 4, 1024)
       up+  (8, 8, 512)      up (16, 16, 256)     up+ (32, 32, 128)
       up   (64, 64, 128)  x SLE(4x4 map)          up+ (128, 128, 64) x SLE(8x8 map)
       Conv2D 3x3 -> tanh                                          (128, 128, 1)
    up:  UpSampling2D -> Conv2D 3x3 (2C) -> BN -> GLU
    up+: up with NoiseInjection before each BN, twice (the paper's UpBlockComp)

    D: image (128, 128, 1) -> Conv2D 3x3 -> LeakyReLU               (128, 128, 32)
       down (64, 64, 64)   down (32, 32, 128)   down (16, 16, 256) x SLE(128 map)
       down (8, 8, 512) x SLE(64 map)
       logits: Conv2D 1x1 -> BN -> LeakyReLU -> Conv2D 4x4 valid    (5, 5, 1)  one logit per patch
       decoders (real images only): (8, 8, 512) -> 4 x up -> Conv2D 3x3 -> tanh   (128, 128, 1)
                                    quadrant of (16, 16, 256) -> the same          (128, 128, 1)
    down: [Conv2D 4x4 s2 -> BN -> LeakyReLU -> Conv2D 3x3 -> BN -> LeakyReLU
           + AvgPool 2 -> Conv2D 1x1 -> BN -> LeakyReLU] / 2 (the paper's DownBlockComp)

64 px drops G's last block and D's first down block (with their SLE 8 -> 128 and 128 -> 16); 256 adds one
of each (SLE 16 -> 256 in G, 256 -> 32 in D), as the paper's 256 model has. ``d_spectral_norm`` (on in
exp7, as in the paper) wraps every convolution of D in :class:`~mammogan_lib.gan.models.layers.SpectralNorm`.

**What differs from the paper.** One channel, not three. The reconstruction loss is the mean absolute error
in pixels, not LPIPS (the perceptual network's weights cannot be fetched offline); D's second, 128-px input
branch and its third decoder are left out; the hinge margins are 1, not the paper's random 0.8-1.0;
Keras's default initialisers; no spectral normalisation in G. The quadrant is drawn per image, not per batch.
"""

from __future__ import annotations

from mammogan_lib.gan.models.common import (
    LEAKY_SLOPE,
    check_resolution,
    image_head,
    keras,
    layers,
    scaled,
)
from mammogan_lib.gan.models.discriminator import spectrally_normalised
from mammogan_lib.gan.models.layers import GatedLinearUnit, NoiseInjection, Quadrant

BASE_FILTERS = 64
"""The paper's ngf and ndf: a width of 1.0."""
GENERATOR_MULTIPLIERS: dict[int, float] = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5}
DISCRIMINATOR_MULTIPLIERS: dict[int, float] = {4: 16, 8: 16, 16: 8, 32: 4, 64: 2, 128: 1, 256: 0.5, 512: 0.25}
DECODER_MULTIPLIERS: dict[int, float] = {16: 4, 32: 2, 64: 2, 128: 1}
"""The decoders' channels at each size (the paper's SimpleDecoder: 32 times these at width 1.0)."""
COMPOUND_SIZES = frozenset({8, 32, 128})
"""Generator blocks with two convolutions and noise (the paper's UpBlockComp); the others have one."""
GENERATOR_START = 4
FEATURE_SIZE = 8
"""D's last feature map, which its logits and the whole-image decoder read."""
PART_SIZE = 16
"""D's feature map whose quadrants the part decoder reads."""
MAX_RECONSTRUCTION = 128
"""The decoders rebuild images at ``min(resolution, 128)`` pixels."""


def channels(multipliers: dict[int, float], size: int, width: float, base: int = BASE_FILTERS) -> int:
    return scaled(int(multipliers[size] * base), width)


def reconstruction_size(resolution: int) -> int:
    """Side of the decoders' images: the resolution, at most :data:`MAX_RECONSTRUCTION`."""
    return min(resolution, MAX_RECONSTRUCTION)


def conv(filters: int, kernel: int, name: str, spectral_norm: bool, strides: int = 1, padding: str = "same"):
    """A bias-free ``Conv2D``, spectrally normalised with ``spectral_norm``."""
    layer = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False, name=name)
    return spectrally_normalised(layer, spectral_norm)


def excitation(
    source: keras.KerasTensor, target: keras.KerasTensor, name: str, spectral_norm: bool = False
) -> keras.KerasTensor:
    """Skip-layer excitation: ``target``'s channels gated by a 4x4 summary of ``source``, a map of another
    depth and size (see the module doc)."""
    pooled = layers.AveragePooling2D(source.shape[1] // 4, name=f"{name}_pool")(source)  # (4, 4, C_source)
    x = conv(target.shape[-1], 4, f"{name}_conv4", spectral_norm, padding="valid")(pooled)  # (1, 1, C)
    x = layers.Activation("silu", name=f"{name}_swish")(x)
    x = conv(target.shape[-1], 1, f"{name}_conv1", spectral_norm)(x)
    gate = layers.Activation("sigmoid", name=f"{name}_gate")(x)  # (1, 1, C)
    return layers.Multiply(name=f"{name}_excite")([target, gate])


def up_block(x: keras.KerasTensor, filters: int, name: str, compound: bool) -> keras.KerasTensor:
    """x2 nearest, then ``Conv2D 3x3 (2 filters) [-> noise] -> BN -> GLU`` once, or twice if ``compound``."""
    x = layers.UpSampling2D(name=f"{name}_up")(x)
    for index in range(2 if compound else 1):
        x = layers.Conv2D(2 * filters, 3, padding="same", use_bias=False, name=f"{name}_conv{index}")(x)
        if compound:
            x = NoiseInjection(name=f"{name}_noise{index}")(x)
        x = layers.BatchNormalization(name=f"{name}_bn{index}")(x)
        x = GatedLinearUnit(name=f"{name}_glu{index}")(x)  # (2H, 2W, filters)
    return x


def build_fastgan_generator(
    resolution: int,
    latent_dim: int = 256,
    width: float = 1.0,
    separate_upsampling: bool = False,
    n_classes: int = 0,
) -> keras.Model:
    """The exp7 generator: ``(latent_dim,)`` -> ``(resolution, resolution, 1)`` in [-1, 1].

    ``separate_upsampling`` changes nothing (its upsampling is always two layers); ``n_classes`` must be 0.
    """
    check_resolution(resolution)
    if n_classes:
        raise ValueError("architecture 'fastgan' has no class-conditional form")
    z = keras.Input((latent_dim,), name="z")
    start = channels(GENERATOR_MULTIPLIERS, GENERATOR_START, width)
    x = layers.Dense(GENERATOR_START * GENERATOR_START * 2 * start, use_bias=False, name="g_dense")(z)
    x = layers.Reshape((GENERATOR_START, GENERATOR_START, 2 * start), name="g_reshape")(x)
    x = layers.BatchNormalization(name="g_bn_init")(x)
    x = GatedLinearUnit(name="g_glu_init")(x)  # (4, 4, C4)
    maps = {GENERATOR_START: x}
    size = GENERATOR_START
    while size < resolution:
        size *= 2
        filters = channels(GENERATOR_MULTIPLIERS, size, width)
        x = up_block(x, filters, f"g_block{size}", size in COMPOUND_SIZES)
        if size // 16 in maps:  # SLE from the map 16 times smaller: 4 -> 64, 8 -> 128, 16 -> 256
            x = excitation(maps[size // 16], x, f"g_sle{size // 16}_{size}")
        maps[size] = x
    return keras.Model(z, image_head(x), name="generator_fastgan")


def down_block(x: keras.KerasTensor, filters: int, name: str, spectral_norm: bool) -> keras.KerasTensor:
    """Halves H and W: the mean of a two-convolution path and an average-pooling shortcut."""
    main = conv(filters, 4, f"{name}_conv4", spectral_norm, strides=2)(x)
    main = layers.BatchNormalization(name=f"{name}_bn0")(main)
    main = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_lrelu0")(main)
    main = conv(filters, 3, f"{name}_conv3", spectral_norm)(main)
    main = layers.BatchNormalization(name=f"{name}_bn1")(main)
    main = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_lrelu1")(main)
    short = layers.AveragePooling2D(2, name=f"{name}_pool")(x)
    short = conv(filters, 1, f"{name}_conv1", spectral_norm)(short)
    short = layers.BatchNormalization(name=f"{name}_bn_short")(short)
    short = layers.LeakyReLU(LEAKY_SLOPE, name=f"{name}_lrelu_short")(short)
    summed = layers.Add(name=f"{name}_add")([main, short])
    return layers.Rescaling(0.5, name=f"{name}_mean")(summed)  # (H/2, W/2, filters)


def decoder(
    x: keras.KerasTensor, size: int, width: float, name: str, spectral_norm: bool
) -> keras.KerasTensor:
    """An 8x8 feature map -> an image ``(size, size, 1)`` in [-1, 1] (float32): x2 blocks, conv, tanh."""
    side = x.shape[1]
    while side < size:
        side *= 2
        filters = channels(DECODER_MULTIPLIERS, min(side, 128), width, base=BASE_FILTERS // 2)
        x = layers.UpSampling2D(name=f"{name}_up{side}")(x)
        x = conv(2 * filters, 3, f"{name}_conv{side}", spectral_norm)(x)
        x = layers.BatchNormalization(name=f"{name}_bn{side}")(x)
        x = GatedLinearUnit(name=f"{name}_glu{side}")(x)
    x = conv(1, 3, f"{name}_out_conv", spectral_norm)(x)
    return layers.Activation("tanh", dtype="float32", name=f"{name}_out")(x)


def build_fastgan_discriminator(
    resolution: int, width: float = 1.0, spectral_norm: bool = True
) -> keras.Model:
    """The self-supervised D: ``[image (R, R, 1), quadrant (N,) int32]`` -> ``[logits (5, 5, 1),
    whole image rebuilt, the quadrant rebuilt]`` (float32; images ``reconstruction_size(R)`` square).

    The logits alone, without the decoders (what the generated images need), are :func:`logits_model`.
    """
    check_resolution(resolution)
    image = keras.Input((resolution, resolution, 1), name="image")
    quadrant = keras.Input((), dtype="int32", name="quadrant")
    stem = channels(DISCRIMINATOR_MULTIPLIERS, 2 * resolution, width)
    x = conv(stem, 3, "d_stem_conv", spectral_norm)(image)
    x = layers.LeakyReLU(LEAKY_SLOPE, name="d_stem_lrelu")(x)  # (R, R, C)
    maps = {resolution: x}
    size = resolution
    while size > FEATURE_SIZE:
        size //= 2
        x = down_block(
            x, channels(DISCRIMINATOR_MULTIPLIERS, 2 * size, width), f"d_down{size}", spectral_norm
        )
        if size * 8 in maps:  # SLE from the map 8 times larger: 128 -> 16, 64 -> 8, 256 -> 32
            x = excitation(maps[size * 8], x, f"d_sle{size * 8}_{size}", spectral_norm)
        maps[size] = x
    head = channels(DISCRIMINATOR_MULTIPLIERS, FEATURE_SIZE, width)
    logits = conv(head, 1, "d_logit_conv1", spectral_norm)(x)
    logits = layers.BatchNormalization(name="d_logit_bn")(logits)
    logits = layers.LeakyReLU(LEAKY_SLOPE, name="d_logit_lrelu")(logits)
    logits = conv(1, 4, "d_logit_conv4", spectral_norm, padding="valid")(logits)  # (5, 5, 1)
    logits = layers.Activation("linear", dtype="float32", name="d_logits")(logits)
    rebuilt_size = reconstruction_size(resolution)
    whole = decoder(x, rebuilt_size, width, "d_decoder_whole", spectral_norm)
    part_maps = Quadrant(name="d_part")([maps[PART_SIZE], quadrant])  # (8, 8, C16)
    part = decoder(part_maps, rebuilt_size, width, "d_decoder_part", spectral_norm)
    return keras.Model([image, quadrant], [logits, whole, part], name="discriminator_fastgan")


def logits_model(discriminator: keras.Model) -> keras.Model:
    """The same D (shared layers and variables) from the image to its logits alone."""
    return keras.Model(
        discriminator.inputs[0], discriminator.get_layer("d_logits").output, name="discriminator_logits"
    )
