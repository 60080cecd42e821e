"""The discriminator shared by the three experiments (thesis 3.3); only its dropout rate differs.

At resolution 128, width 1.0::

    image                                                 (128, 128, 1)
    4 x [Conv2D 4x4 stride 2 'same' -> LeakyReLU(0.2) -> Dropout(rate)]
         32 filters                                       (64, 64, 32)
         64 filters                                       (32, 32, 64)
        128 filters                                       (16, 16, 128)
        256 filters                                       (8, 8, 256)
    Flatten                                               (16384,)
    Dense(1) -> sigmoid                                   (1,)  probability "real", float32

Kernel size: the thesis does not give it. We use 4x4 (:data:`KERNEL_SIZE`), as the DCGAN-style Keras code
of the time does (e.g. keras.io's DCGAN example: ``Conv2D(..., kernel_size=4, strides=2, padding="same")``
with ``LeakyReLU(0.2)``): a kernel divisible by the stride covers every input pixel equally often, and it
is the common choice for this exact block.

Filter schedule (:data:`DISCRIMINATOR_FILTERS`): 128 -> (32, 64, 128, 256); 64 -> (32, 64, 128), the
first three, so the 64x64 input still ends at 8x8; 256 -> (16, 32, 64, 128, 256), a 16-filter conv
prepended to downsample the extra octave cheaply.

Spectral normalisation (``spectral_norm=True``, the ``d_spectral_norm`` parameter; Miyato et al. 2018): every
convolution and the dense layer is wrapped in :class:`~mammogan_lib.gan.models.layers.SpectralNorm`, which
computes with the kernel divided by its largest singular value (one power iteration per training call, its
vector ``vector_u`` a non-trainable weight that checkpoints save), bounding D's Lipschitz constant so that a
small training set cannot be fitted by an arbitrarily sharp D. Without it the model is exactly the one above
(same layers, names and weight files).

Conditional (``n_classes`` > 0, the ``conditional`` parameter): a projection discriminator (Miyato & Koyama
2018). The model takes ``[image, class]`` and adds to the logit the inner product of a learned class
embedding with the flattened features ``phi(x)`` that the dense layer reads::

    logit = Dense(1)(phi(x)) + <embed(y), phi(x)>     embed: (n_classes, 8*8*C_last), d_class_projection

so D judges "real image *of this class*" rather than "real image". The embedding is not spectrally
normalised (it is a lookup, not a map whose gain compounds through layers).
"""

from __future__ import annotations

from mammogan_lib.gan.models.common import (
    LEAKY_SLOPE,
    block_count,
    check_dropout,
    check_resolution,
    class_input,
    keras,
    layers,
    scaled,
)
from mammogan_lib.gan.models.layers import GlobalBatchDropout, SpectralNorm

KERNEL_SIZE = 4

DISCRIMINATOR_FILTERS: dict[int, tuple[int, ...]] = {
    64: (32, 64, 128),
    128: (32, 64, 128, 256),
    256: (16, 32, 64, 128, 256),
}


def discriminator_filters(resolution: int) -> tuple[int, ...]:
    """Filters of the stride-2 convolutions at ``resolution`` (width 1.0); one per halving to 8x8."""
    filters = DISCRIMINATOR_FILTERS[check_resolution(resolution)]
    assert len(filters) == block_count(resolution)
    return filters


def spectrally_normalised(layer: keras.layers.Layer, spectral_norm: bool) -> keras.layers.Layer:
    """``layer``, or with ``spectral_norm`` wrapped in :class:`SpectralNorm` named ``<layer>_sn``."""
    if not spectral_norm:
        return layer
    return SpectralNorm(layer, power_iterations=1, name=f"{layer.name}_sn")


def downsampling_block(
    x: keras.KerasTensor, filters: int, dropout: float, index: int, spectral_norm: bool = False
) -> keras.KerasTensor:
    """``Conv2D 4x4 stride 2 'same' -> LeakyReLU(0.2) -> Dropout``: halves H and W."""
    conv = layers.Conv2D(filters, KERNEL_SIZE, strides=2, padding="same", name=f"d_conv{index}")
    x = spectrally_normalised(conv, spectral_norm)(x)
    x = layers.LeakyReLU(LEAKY_SLOPE, name=f"d_lrelu{index}")(x)  # (H/2, W/2, filters)
    # on torch, a seed (though every step re-seeds the layer): without one, Keras's torch backend draws the
    # mask from torch's global generator instead of the layer's state, and a resume would not be exact.
    # Elsewhere none, as always: a seed changes which masks TensorFlow draws, and so every earlier number.
    seed = index if keras.backend.backend() == "torch" else None
    return GlobalBatchDropout(dropout, seed=seed, name=f"d_drop{index}")(x)


def build_discriminator_model(
    resolution: int, dropout: float, width: float = 1.0, spectral_norm: bool = False, n_classes: int = 0
) -> keras.Model:
    """Image ``(resolution, resolution, 1)`` -> probability ``(1,)`` that it is real (float32); with
    ``n_classes`` > 0 the inputs are ``[image, class]`` (class ``(N,)`` int32) and the logit has the class
    projection term (see the module doc)."""
    check_dropout(dropout)
    image = keras.Input((resolution, resolution, 1), name="image")
    label = class_input(n_classes)
    x = image
    for index, filters in enumerate(discriminator_filters(resolution), start=1):
        x = downsampling_block(x, scaled(filters, width), dropout, index, spectral_norm)  # (R/2^i, R/2^i, C)
    features = layers.Flatten(name="d_flatten")(x)  # (8*8*C_last,)
    x = spectrally_normalised(layers.Dense(1, name="d_dense"), spectral_norm)(features)  # (1,) logit
    if label is not None:
        embedded = layers.Embedding(n_classes, features.shape[-1], name="d_class_projection")(label)
        projection = layers.Dot(axes=1, name="d_projection")([embedded, features])  # (1,) <embed(y), phi(x)>
        x = layers.Add(name="d_logit")([x, projection])  # (1,) logit
    probability = layers.Activation("sigmoid", dtype="float32", name="d_out")(x)  # (1,) float32
    inputs = image if label is None else [image, label]
    return keras.Model(inputs, probability, name="discriminator")


def with_logits(discriminator: keras.Model) -> keras.Model:
    """The same discriminator (shared layers and variables) returning ``[logit, probability]``, each
    ``(N, 1)``: the regularisers act on the logit (the sigmoid's input), where D's gradients do not vanish
    as it saturates."""
    logit = discriminator.get_layer("d_out").input
    return keras.Model(discriminator.inputs, [logit, discriminator.output], name="discriminator_logits")
