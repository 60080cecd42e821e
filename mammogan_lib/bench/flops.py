"""Analytic FLOPs of the GAN's layers and of a training step (ours and the classic loop's), per pass."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# --- FLOP counting ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerFlops:
    """Forward FLOPs of one layer for one image (a multiply-add counts 2)."""

    model: str
    layer: str
    kind: str
    output_shape: tuple[int, ...]
    flops: int


def _spatial(shape: Sequence[int | None]) -> int:
    """Product of the dimensions between the batch and the channel axis (1 for a vector)."""
    return int(np.prod([int(d) for d in shape[1:-1]])) if len(shape) > 2 else 1


def layer_forward_flops(layer: Any) -> int | None:
    """Forward FLOPs of ``layer`` per image, or ``None`` for layers the counter does not count.

    Counted (the arithmetic that matters: the matrix products): ``Conv2D``
    ``2 * H_out * W_out * k_h * k_w * C_in/groups * C_out`` (+ ``H_out * W_out * C_out`` for the bias);
    ``Conv2DTranspose`` ``2 * H_in * W_in * k_h * k_w * C_in * C_out`` (each input pixel scatters a kernel)
    + bias; ``UpsampleConv2D`` what it executes, a stride-2 transposed convolution with a 4x4 kernel,
    ``2 * H_in * W_in * 16 * C_in * C_out`` + bias (4/9 of ``UpSampling2D`` + ``Conv2D`` 3x3, the same
    function); ``Dense`` ``2 * in * out`` (+ ``out``) per position. ``UpSampling2D`` (nearest), ``Reshape``,
    ``Flatten`` and ``Dropout`` only move data: 0. Element-wise layers (BatchNormalization, activations;
    a few FLOPs per activation, under 1 % of the convolutions here) are not counted: ``None``.
    """
    kind = type(layer).__name__
    if kind in ("UpSampling2D", "Reshape", "Flatten", "Dropout", "InputLayer"):
        return 0
    if kind in ("Conv2D", "Conv2DTranspose", "UpsampleConv2D", "Dense"):
        kernel = [int(d) for d in layer.kernel.shape]
        out_shape = tuple(layer.output.shape)
        bias = _spatial(out_shape) * int(out_shape[-1]) if layer.use_bias else 0
        if kind == "Dense":
            return _spatial(out_shape) * 2 * kernel[0] * kernel[1] + bias
        if kind == "Conv2D":
            return 2 * _spatial(out_shape) * int(np.prod(kernel)) + bias
        if kind == "UpsampleConv2D":  # executed as a 4x4 transposed convolution of the small input
            return 2 * _spatial(tuple(layer.input.shape)) * 16 * kernel[2] * kernel[3] + bias
        return 2 * _spatial(tuple(layer.input.shape)) * int(np.prod(kernel)) + bias
    return None


def count_forward_flops(model: Any) -> list[LayerFlops]:
    """Per-layer forward FLOPs of a (possibly nested) Keras functional model, for one image.

    Nested models (``combined = D(G(z))``) are walked into; layers that :func:`layer_forward_flops` does
    not count are left out of the list.
    """
    records = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            records.extend(count_forward_flops(layer))
            continue
        flops = layer_forward_flops(layer)
        if flops is not None and flops > 0:
            shape = tuple(int(d) for d in layer.output.shape[1:])
            records.append(LayerFlops(model.name, layer.name, type(layer).__name__, shape, flops))
    return records


def forward_flops(model: Any) -> int:
    """Total forward FLOPs of ``model`` for one image (the sum of :func:`count_forward_flops`)."""
    return sum(record.flops for record in count_forward_flops(model))


@dataclass(frozen=True)
class Pass:
    """One pass of a training step: ``network`` over ``images_per_batch * batch`` images, costing
    ``forward_equivalents`` times the network's forward FLOPs (forward 1, weight gradients 1, input
    gradients 1)."""

    description: str
    network: str  # "generator" | "discriminator"
    images_per_batch: int
    forward_equivalents: int


OUR_STEP_PASSES: tuple[Pass, ...] = (
    Pass("G forward on z (once; shared by both updates)", "generator", 1, 1),
    Pass("D forward on real and on fake", "discriminator", 2, 1),
    Pass("D update: D backward, weight + input gradients, real and fake", "discriminator", 2, 2),
    Pass("G update: D backward on fake, input gradients only", "discriminator", 1, 1),
    Pass("G update: G backward, weight + input gradients", "generator", 1, 2),
)
"""Our step: fake = G(z) once; 3 G forward-equivalents + 7 D forward-equivalents per image."""

CLASSIC_LOOP_PASSES: tuple[Pass, ...] = (
    Pass("D.train_on_batch(real, 1): D forward", "discriminator", 1, 1),
    Pass("D.train_on_batch(real, 1): D backward, weight + input gradients", "discriminator", 1, 2),
    Pass("G.predict(z): G forward (inference)", "generator", 1, 1),
    Pass("D.train_on_batch(fake, 0): D forward", "discriminator", 1, 1),
    Pass("D.train_on_batch(fake, 0): D backward, weight + input gradients", "discriminator", 1, 2),
    Pass("combined.train_on_batch(z, 1): G forward (again) and D forward", "generator", 1, 1),
    Pass("combined.train_on_batch(z, 1): D forward", "discriminator", 1, 1),
    Pass("combined.train_on_batch(z, 1): D backward (frozen), input gradients only", "discriminator", 1, 1),
    Pass("combined.train_on_batch(z, 1): G backward, weight + input gradients", "generator", 1, 2),
)
"""The classic loop: G runs forward twice and D forward on the fakes twice; 4 G + 8 D per image."""


def step_flops(passes: Sequence[Pass], per_image: dict[str, int], batch_size: int) -> int:
    """FLOPs of one training step made of ``passes`` (``per_image``: forward FLOPs per network).

    An upper bound within a fraction of a percent: the gradient with respect to the first layer's input
    (the images, the latent vector) is counted although no one needs it.
    """
    return sum(p.images_per_batch * batch_size * p.forward_equivalents * per_image[p.network] for p in passes)


def models_forward_flops(generator: Any, discriminator: Any) -> dict[str, int]:
    return {"generator": forward_flops(generator), "discriminator": forward_flops(discriminator)}


def measure_flops(
    architecture: str = "baseline", resolution: int = 128, width: float = 1.0, batch_size: int = 32
) -> dict[str, Any]:
    """Per-layer forward FLOPs of G and D (our float32 models) and the steps' FLOPs: ours, ours on the
    thesis's two-layer upsampling blocks, and the classic loop's (which uses those)."""
    from mammogan_lib.gan.models import build_generator, build_models

    generator, discriminator = build_models(architecture, resolution, width=width)
    per_image = models_forward_flops(generator, discriminator)
    thesis_layers = {
        **per_image,
        "generator": forward_flops(
            build_generator(architecture, resolution, width=width, separate_upsampling=True)
        ),
    }
    return {
        "forward_flops_per_image": per_image,
        "forward_flops_per_image_thesis_layers": thesis_layers,
        "our_step_flops": step_flops(OUR_STEP_PASSES, per_image, batch_size),
        "our_step_flops_thesis_layers": step_flops(OUR_STEP_PASSES, thesis_layers, batch_size),
        "reference_step_flops": step_flops(CLASSIC_LOOP_PASSES, thesis_layers, batch_size),
        "layers": [
            record.__dict__ for model in (generator, discriminator) for record in count_forward_flops(model)
        ],
    }
