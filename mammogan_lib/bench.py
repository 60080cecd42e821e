"""The benchmark (``make bench``): how fast we train, against the loop the thesis's code would have used.

``python -m mammogan_lib.bench`` measures, on this machine, in one run:

* **Training speed** of the exp3 ("baseline") GAN, 128x128, batch 32, width 1.0, after warm-up, median of
  repeated steps:

  (a) ``reference``: the classic Keras-GAN loop many theses use (Keras-GAN style): per step
      ``D.train_on_batch(real, 1)``, ``fake = G.predict(z)``, ``D.train_on_batch(fake, 0)`` and
      ``combined.train_on_batch(z, 1)`` with ``combined = D(G(z))`` and D frozen; the models in the
      thesis's layers (``UpSampling2D`` + ``Conv2D``), the same Adam (learning rates and beta1 of
      ``params/base.yaml``), float32, BCE;
  (b0) ``float32_thesis_layers``: our compiled train step (:mod:`mammogan_lib.training`), float32, on the
      same two-layer models: what the step alone gains (at most the arithmetic the classic loop repeats);
  (b) ``float32``: our train step in float32 on our models, whose upsampling blocks are one
      ``UpsampleConv2D`` each (the same function and weights in 4/9 of the arithmetic);
  (c) ``mixed``: our train step in mixed precision (bfloat16 on a CPU, float16 on a GPU). Where the device
      does not compute it natively (bfloat16 on a CPU without AVX-512 BF16 / AMX) it is emulated, many
      times slower, and timed with fewer steps (:data:`EMULATED_REPEATS`): the point is its size.

  For each: ms/step, images/s (generated images per second, ``batch / step time``), speed-up over (a),
  the analytic FLOPs the step executes (:func:`count_forward_flops`, :func:`step_flops`), the FLOP/s
  achieved and its fraction of a large float32 matmul measured in the same run (:func:`measure_matmul_peak`).
  Then **which policy ``precision: auto`` picks** on this machine (with its calibration, where it runs
  one), flagged as a wrong pick if that policy's step is more than 5 % slower than float32's
  (:data:`AUTO_TOLERANCE`). The report records the CPU's flags (AVX-512, BF16, AMX) beside the figures.
* **02_preprocess throughput**: images/s of :func:`mammogan_lib.preprocess.preprocess_image` over the
  phantom's full mammograms (~1024 px high), with :func:`mammogan_lib.parallel.parallel_map` at 2 workers.
* **Feature throughput** of :mod:`mammogan_lib.features` (ResNet50 for the SVM, InceptionV3 for FID) on
  ``(32, R, R)`` arrays; random weights where the pretrained ones are not on the machine (the speed of a
  forward pass does not depend on the weights' values; the report says which).

Every measurement runs in a fresh subprocess (``python -m mammogan_lib.bench --measure NAME``), for two
reasons: its peak memory (``ru_maxrss``) is its own, and TensorFlow and torch are never loaded in the same
process (importing torchvision after tensorflow segfaults here: see :mod:`mammogan_lib.frameworks`).
Figures go to ``runs/bench/bench.json`` with the machine, package versions and the load average at the start
and end; a table goes to stdout. Random data stand in for images in the training and feature timings: the
cost does not depend on pixel values. Speed is measured and reported here, never asserted in a test.

``python -m mammogan_lib.bench --profile reference float32 mixed`` answers the next question, where a
step's time goes: a ``tf.profiler`` trace summarised by op kind and by op (:func:`profile_step`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.timing import summarise, time_calls

DEFAULT_OUTPUT = Path("runs/bench/bench.json")
TRAIN_MEASUREMENTS: tuple[str, ...] = ("reference", "float32_thesis_layers", "float32", "mixed")
"""(a), (b0), (b), (c): the order of the table; the speed-ups are relative to the first."""

TRAIN_LABELS: dict[str, str] = {
    "reference": "(a) classic Keras loop, thesis layers",
    "float32_thesis_layers": "(b0) our step, float32, thesis layers",
    "float32": "(b) our step, float32",
    "mixed": "(c) our step, mixed precision",
}
TARGET_SPEEDUPS: dict[str, float] = {"float32": 1.3}
"""The float32 step must beat the classic loop by this much on every CPU (speed-up over (a))."""
AUTO_TOLERANCE = 1.05
"""``precision: auto``'s pick may be at most 5 % slower than float32 on the machine it runs on."""
EMULATED_WARMUP, EMULATED_REPEATS = 1, 3
"""Steps of a precision the device only emulates (each can take a minute at full size)."""

EXP3_EPOCHS = 20_000
EXP3_IMAGES = 500
"""The thesis's exp3: 20,000 "epochs" at batch 32 on ~500 training images."""

T4_PEAK_TFLOPS: dict[str, float] = {"float32": 8.1, "mixed_float16": 65.0}
"""NVIDIA T4 datasheet peaks: 8.1 TFLOP/s float32, 65 TFLOP/s float16 on tensor cores (boost clock)."""
T4_ASSUMED_UTILISATION: dict[str, tuple[float, float]] = {"float32": (0.3, 0.6), "mixed_float16": (0.1, 0.3)}
"""Assumed share of the T4 peak a batch-32 DCGAN step reaches (low, high): assumed, never measured."""

SUBPROCESS_TIMEOUT_S = 3600


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


def measure_flops(architecture: str = "baseline", resolution: int = 128, width: float = 1.0,
                  batch_size: int = 32) -> dict[str, Any]:  # fmt: skip
    """Per-layer forward FLOPs of G and D (our float32 models) and the steps' FLOPs: ours, ours on the
    thesis's two-layer upsampling blocks, and the classic loop's (which uses those)."""
    from mammogan_lib.models import build_generator, build_models

    generator, discriminator = build_models(architecture, resolution, width=width)
    per_image = models_forward_flops(generator, discriminator)
    thesis_layers = {**per_image, "generator": forward_flops(build_generator(
        architecture, resolution, width=width, separate_upsampling=True))}  # fmt: skip
    return {"forward_flops_per_image": per_image, "forward_flops_per_image_thesis_layers": thesis_layers,
            "our_step_flops": step_flops(OUR_STEP_PASSES, per_image, batch_size),
            "our_step_flops_thesis_layers": step_flops(OUR_STEP_PASSES, thesis_layers, batch_size),
            "reference_step_flops": step_flops(CLASSIC_LOOP_PASSES, thesis_layers, batch_size),
            "layers": [record.__dict__ for model in (generator, discriminator)
                       for record in count_forward_flops(model)]}  # fmt: skip


# --- timing ----------------------------------------------------------------------------------------------


def bench_settings(architecture: str, resolution: int, batch_size: int, precision: str, width: float,
                   seed: int, jit_compile: bool = False) -> Any:  # fmt: skip
    """The :class:`~mammogan_lib.config.TrainConfig` of a timing: ``params/base.yaml``'s values (the
    thesis's optimiser settings) for everything but the size, the precision and the seed. Its run folder
    is a fresh temporary one: a timing never trains into a run, and ``auto`` finds no checkpoint there."""
    import tempfile

    from mammogan_lib.config import TrainConfig

    return TrainConfig(exp_id="bench", runs_dir=tempfile.mkdtemp(prefix="mammogan-bench-"),
                       architecture=architecture, resolution=resolution, batch_size=batch_size,
                       precision=precision, width=width, seed=seed, jit_compile=jit_compile)  # fmt: skip


def random_images(count: int, resolution: int, seed: int) -> np.ndarray:
    """``(count, R, R)`` float32 uniform in [-1, 1]: stand-ins for training images (cost is value-blind)."""
    return np.random.default_rng(seed).uniform(-1, 1, (count, resolution, resolution)).astype(np.float32)


def time_train_step(
    architecture: str = "baseline",
    resolution: int = 128,
    batch_size: int = 32,
    precision: str = "float32",
    width: float = 1.0,
    warmup: int = 3,
    repeats: int = 20,
    seed: int = 0,
    jit_compile: bool = False,
    separate_upsampling: bool = False,
) -> dict[str, Any]:
    """Our compiled train step (:mod:`mammogan_lib.training`): median wall time of one step.

    One step: ``fake = G(z)`` once, D on ``batch_size`` real and ``batch_size`` fake images, both
    gradients, both Adam updates (:data:`OUR_STEP_PASSES`); ``flops_per_step`` is their analytic count.
    ``jit_compile``: compile the step with XLA (the ``jit_compile`` parameter) instead of the TF graph.
    ``separate_upsampling``: models in the thesis's two-layer upsampling blocks.
    """
    from mammogan_lib.training import build_trainer

    settings = bench_settings(architecture, resolution, batch_size, precision, width, seed, jit_compile)
    trainer = build_trainer(random_images(2 * batch_size, resolution, seed), settings,
                            separate_upsampling=separate_upsampling)  # fmt: skip
    batch = np.arange(batch_size)
    timing = time_calls(lambda: trainer.train_step(batch), warmup, repeats)  # returns numpy: finished
    per_image = models_forward_flops(trainer.generator, trainer.discriminator)
    return {"architecture": architecture, "resolution": resolution, "batch_size": batch_size, "width": width,
            "precision": precision, "dtype_policy": trainer.dtype_policy, "jit_compile": jit_compile,
            "separate_upsampling": separate_upsampling, "warmup": warmup,
            "repeats": repeats, **summarise(timing, batch_size), "forward_flops_per_image": per_image,
            "flops_per_step": step_flops(OUR_STEP_PASSES, per_image, batch_size)}  # fmt: skip


@dataclass
class ClassicLoop:
    """The classic Keras GAN loop (Keras-GAN style) on our models: call :meth:`step` once per iteration."""

    generator: Any
    discriminator: Any
    combined: Any
    images: np.ndarray  # (N, R, R, 1) float32, in host memory as those scripts kept it
    batch_size: int
    latent_dim: int
    rng: np.random.Generator

    def step(self) -> tuple[float, float, float]:
        """One iteration: D on a real batch, D on ``G.predict(z)``, then G through the frozen D.

        In Keras 2 a model's trainability was frozen at ``compile``, so ``D.trainable = False`` before
        compiling the combined model was enough. Keras 3 reads ``trainable`` when a train function is
        first traced, so the Keras 3 form of the same loop sets ``D.trainable`` before each kind of update
        (otherwise D would never learn); the flag only selects which variables a traced function updates,
        and no function is retraced after the first iteration.
        """
        ones = np.ones((self.batch_size, 1), np.float32)
        real = self.images[self.rng.integers(0, len(self.images), self.batch_size)]
        self.discriminator.trainable = True
        d_loss_real = self.discriminator.train_on_batch(real, ones)
        z = self.rng.normal(size=(self.batch_size, self.latent_dim)).astype(np.float32)
        fake = self.generator.predict(z, batch_size=self.batch_size, verbose=0)
        d_loss_fake = self.discriminator.train_on_batch(fake, np.zeros_like(ones))
        self.discriminator.trainable = False
        g_loss = self.combined.train_on_batch(z, ones)
        return float(d_loss_real), float(d_loss_fake), float(g_loss)


def build_classic_loop(images: np.ndarray, settings: Any) -> ClassicLoop:
    """G and D from our builders in the thesis's layers (``UpSampling2D`` + ``Conv2D``), float32; D
    compiled with Adam(lr_d, beta1) and BCE; ``combined = D(G(z))`` compiled with Adam(lr_g, beta1) and BCE
    while D is frozen (the textbook order)."""
    from mammogan_lib.frameworks import import_keras
    from mammogan_lib.models import build_models

    keras = import_keras()
    keras.utils.set_random_seed(settings.seed)
    generator, discriminator = build_models(settings.architecture, settings.resolution, settings.latent_dim,
                                            settings.width, settings.d_dropout, separate_upsampling=True)
    discriminator.compile(optimizer=keras.optimizers.Adam(settings.lr_d, beta_1=settings.beta1),
                          loss="binary_crossentropy")  # fmt: skip
    discriminator.trainable = False
    z = keras.Input((settings.latent_dim,), name="z")
    combined = keras.Model(z, discriminator(generator(z)), name="combined")
    combined.compile(optimizer=keras.optimizers.Adam(settings.lr_g, beta_1=settings.beta1),
                     loss="binary_crossentropy")  # fmt: skip
    return ClassicLoop(generator, discriminator, combined, images[..., None], settings.batch_size,
                       settings.latent_dim, np.random.default_rng(settings.seed))  # fmt: skip


def time_classic_loop(
    architecture: str = "baseline",
    resolution: int = 128,
    batch_size: int = 32,
    width: float = 1.0,
    warmup: int = 3,
    repeats: int = 20,
    seed: int = 0,
) -> dict[str, Any]:
    """The reference (a): median wall time of one iteration of :class:`ClassicLoop`, float32.

    One iteration: D forward + backward on the real batch, G forward (``predict``), D forward + backward
    on the fakes, then G forward again, D forward and both backwards through the combined model
    (:data:`CLASSIC_LOOP_PASSES`); ``flops_per_step`` is their analytic count.
    """
    settings = bench_settings(architecture, resolution, batch_size, "float32", width, seed)
    loop = build_classic_loop(random_images(2 * batch_size, resolution, seed), settings)
    timing = time_calls(loop.step, warmup, repeats)  # train_on_batch returns floats: finished
    per_image = models_forward_flops(loop.generator, loop.discriminator)
    return {"architecture": architecture, "resolution": resolution, "batch_size": batch_size, "width": width,
            "precision": "float32", "dtype_policy": "float32", "warmup": warmup, "repeats": repeats,
            **summarise(timing, batch_size), "forward_flops_per_image": per_image,
            "flops_per_step": step_flops(CLASSIC_LOOP_PASSES, per_image, batch_size)}  # fmt: skip


# --- matmul peak -----------------------------------------------------------------------------------------


def _best_matmul_gflops(multiply: Callable[[], Any], size: int, repeats: int) -> float:
    timing = time_calls(multiply, warmup=1, repeats=repeats)
    return round(2 * size**3 / min(timing.wall) / 1e9, 1)


def measure_matmul_peak(size: int = 2048, repeats: int = 5) -> dict[str, Any]:
    """GFLOP/s of a ``size x size`` float32 matrix product, best of ``repeats``: the machine's practical
    peak. NumPy (its BLAS) and TensorFlow (the library our train step uses); the peak is the larger."""
    tf = _tensorflow()
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    ta, tb = tf.constant(a), tf.constant(b)
    # eager CPU ops run synchronously; reading one element makes sure of it
    gflops = {"numpy_float32": _best_matmul_gflops(lambda: a @ b, size, repeats),
              "tensorflow_float32": _best_matmul_gflops(lambda: tf.matmul(ta, tb)[0, 0].numpy(), size,
                                                        repeats)}  # fmt: skip
    source = max(gflops, key=gflops.get)
    return {"size": size, "repeats": repeats, "gflops": gflops, "float32_peak_gflops": gflops[source],
            "float32_peak_source": source}


def measure_matmul_reduced(size: int = 2048, repeats: int = 5, dtype: str = "bfloat16") -> dict[str, Any]:
    """GFLOP/s of a TensorFlow ``size x size`` matrix product in ``dtype`` (bfloat16 or float16), best of
    ``repeats``: the honest ceiling for mixed precision (emulated, it shows the cliff)."""
    tf = _tensorflow()
    rng = np.random.default_rng(0)
    a, b = (tf.constant(rng.standard_normal((size, size), dtype=np.float32), dtype) for _ in range(2))
    gflops = _best_matmul_gflops(lambda: tf.matmul(a, b)[0, 0].numpy(), size, repeats)
    return {"dtype": dtype, "gflops": gflops}


def _tensorflow() -> Any:
    from mammogan_lib.frameworks import import_keras

    import_keras()  # sets the backend and the log level before tensorflow loads
    import tensorflow as tf

    return tf


def choose_auto_precision(architecture: str = "baseline", resolution: int = 128, batch_size: int = 32,
                          width: float = 1.0, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """The policy ``precision: auto`` picks for these settings on this machine (and its calibration)."""
    from mammogan_lib.training import build_trainer

    started = time.perf_counter()
    settings = bench_settings(architecture, resolution, batch_size, "auto", width, seed)
    trainer = build_trainer(random_images(2 * batch_size, resolution, seed), settings)
    return {**trainer.precision.as_dict(), "choice_s": round(time.perf_counter() - started, 1)}


# --- 02_preprocess throughput --------------------------------------------------------------------------


def phantom_spec(images: int, height: int = 1024) -> Any:
    """The phantom of ``params/base.yaml`` (500 healthy images per healthy set), with ``images`` full
    mammograms: at the default 1,570 it is the folder the pipeline already wrote, so it is reused."""
    from mammogan_lib.phantom import PhantomSpec

    return PhantomSpec(n_images=images, height=height, seed=0, cut_contour_fraction=0.3, n_healthy=500,
                       n_healthy_other_source=500)  # fmt: skip


def preprocess_with_peak_memory(task: tuple[str, str, int, str]) -> tuple[bool, int]:
    """Preprocess one image in a worker; return whether it succeeded and the worker's peak RSS (KiB).

    Module-level so the process pool can import it; the array is dropped so that only the work is timed,
    not pickling 1,570 arrays back to the parent (the pipeline does send them back; they are 64 KiB each).
    """
    from mammogan_lib.preprocess import preprocess_image

    result = preprocess_image(task)
    return result.array is not None, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_preprocess(images: int = 1570, workers: int = 2, resolution: int = 128,
                       data_dir: str = "data", resize_mode: str = "pad") -> dict[str, Any]:  # fmt: skip
    """Images/s of 02_preprocess's per-image work over the phantom's full mammograms (~1024 px high).

    The phantom is generated first when ``<data_dir>/phantom/`` does not hold it (its time is reported
    separately). The wall time includes starting the worker pool, as 02_preprocess pays it too.
    """
    from mammogan_lib.datasets.loading import load_dataset
    from mammogan_lib.parallel import parallel_map
    from mammogan_lib.phantom import ensure_phantom, phantom_folder, phantom_matches

    spec = phantom_spec(images)
    root = phantom_folder(Path(data_dir), spec)
    reused = phantom_matches(root, spec)
    started = time.perf_counter()
    ensure_phantom(root, spec, workers=workers)
    phantom_s = time.perf_counter() - started
    paths = [p for p in load_dataset(root).images["image_path"] if p]
    tasks = [(str(i), path, resolution, resize_mode) for i, path in enumerate(paths)]
    started = time.perf_counter()
    results = list(parallel_map(preprocess_with_peak_memory, tasks, workers))
    seconds = time.perf_counter() - started
    return {"phantom": str(root), "phantom_reused": reused,
            "phantom_s": None if reused else round(phantom_s, 1), "images": len(tasks),
            "succeeded": sum(ok for ok, _ in results), "workers": workers,
            "resolution": resolution, "resize_mode": resize_mode, "seconds": round(seconds, 2),
            "images_per_s": round(len(tasks) / seconds, 2),
            "worker_peak_rss_mib": round(max(rss for _, rss in results) / 1024, 1)}  # fmt: skip


# --- feature-network throughput ---------------------------------------------------------------------------


FEATURE_NETWORKS: tuple[str, ...] = ("resnet50", "inception")
"""ResNet50 (the SVM's features, 06_svm) and InceptionV3 (FID/KID, 05_metrics)."""


def load_feature_network(name: str) -> Any:
    """:mod:`mammogan_lib.features`'s network ``name``: pretrained where the weights are on this machine,
    else random weights (allowed here: a forward pass costs the same whatever the weights' values)."""
    from mammogan_lib import features

    loader = features.load_resnet50 if name == "resnet50" else features.load_inception
    return loader(allow_random=True)


def measure_features(network: str, batch_size: int = 32, resolution: int = 128, warmup: int = 1,
                     repeats: int = 5) -> dict[str, Any]:  # fmt: skip
    """Images/s of :func:`mammogan_lib.features.extract_features` on batches of ``(batch, R, R)`` arrays in
    [-1, 1], as 05_metrics and 06_svm call it: the resize to 224 px (ResNet50) or 299 px (Inception), the
    three channels and the network's forward pass, in inference mode on the CPU.
    """
    from mammogan_lib.features import extract_features
    from mammogan_lib.frameworks import import_torch_side

    torch, _ = import_torch_side()
    loaded = load_feature_network(network)
    images = random_images(batch_size, resolution, seed=0)
    timing = time_calls(lambda: extract_features(images, loaded, batch_size=batch_size), warmup, repeats)
    return {"network": network, "pretrained": loaded.pretrained, "weights": loaded.description,
            "input_resolution": resolution, "batch_size": batch_size, "threads": torch.get_num_threads(),
            "warmup": warmup, "repeats": repeats, **summarise(timing, batch_size)}  # fmt: skip


# --- profile ----------------------------------------------------------------------------------------------


def op_category(op_type: str, op_name: str) -> str:
    """Where an op's time goes, in the terms of the models: conv forward / input gradient / weight gradient,
    dense, upsampling, batch normalisation, optimiser, or other (element-wise, losses, casts, copies).

    Gradients are told from the forward pass by the op's name (``gradient_tape/...``), not its type: the
    forward pass of an ``UpsampleConv2D`` is a transposed convolution, whose TensorFlow op is
    ``Conv2DBackpropInput``, and its input gradient is a ``Conv2D``.
    """
    if "/adam" in op_name.lower() or op_name.lower().startswith("adam"):
        return "optimizer (Adam)"
    if "/g_up" in f"/{op_name}":
        return "upsampling (forward + gradient)"
    if "/g_bn" in f"/{op_name}":
        return "batch norm (forward + gradient)"
    if "Conv2D" in op_type:
        if not op_name.startswith("gradient_tape/"):
            return "conv forward"
        return "conv weight gradient" if "BackpropFilter" in op_type else "conv input gradient"
    if "MatMul" in op_type:
        return "dense (matmul)"
    return "other"


def _op_stats_rows(logdir: Path) -> list[dict[str, Any]]:
    """The per-op rows of TensorFlow's profiler ("framework_op_stats") for the trace under ``logdir``."""
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

    trace = sorted(logdir.glob("plugins/profile/*/*.xplane.pb"))[-1]
    data, ok = _pywrap_profiler_plugin.xspace_to_tools_data([str(trace)], "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"the profiler could not read {trace}")
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    return [{k: cell.get("v") for k, cell in zip(columns, row["c"], strict=True)} for row in table["rows"]]


def profile_step(kind: str = "float32", architecture: str = "baseline", resolution: int = 128,
                 batch_size: int = 32, width: float = 1.0, warmup: int = 2, steps: int = 3, top: int = 25,
                 logdir: str = "runs/bench/profile") -> dict[str, Any]:  # fmt: skip
    """Where one step's time goes: a ``tf.profiler`` trace of ``steps`` steps after ``warmup``.

    ``kind``: a name of :data:`TRAIN_MEASUREMENTS` (``reference``: the classic loop) or a precision of our
    step. Returns the self time per :func:`op_category` and the ``top`` ops (TensorFlow op type and name,
    which names the layer), in ms per
    step. Op times are summed over the threads that ran them (so they can exceed the wall time when ops
    ran side by side); ``wall - ops`` is time with no op running (Python, ``train_on_batch`` overhead).
    """
    import tensorflow as tf

    from mammogan_lib.training import build_trainer

    images = random_images(2 * batch_size, resolution, 0)
    if kind == "reference":
        settings = bench_settings(architecture, resolution, batch_size, "float32", width, 0)
        run = build_classic_loop(images, settings).step
    else:
        precision = "float32" if kind.startswith("float32") else kind
        settings = bench_settings(architecture, resolution, batch_size, precision, width, 0)
        trainer = build_trainer(images, settings, separate_upsampling=kind == "float32_thesis_layers")
        run = lambda: trainer.train_step(np.arange(batch_size))  # noqa: E731
    time_calls(run, warmup, 0)
    folder = Path(logdir) / kind
    tf.profiler.experimental.start(str(folder))
    timing = time_calls(run, 0, steps)
    tf.profiler.experimental.stop()
    rows = [row for row in _op_stats_rows(folder) if row["host_or_device"] == "Host"]
    busy = sorted((r for r in rows if r["type"] != "IDLE"), key=lambda r: -r["total_self_time"])
    categories: dict[str, float] = {}
    for row in busy:
        category = op_category(row["type"], row["operation"])
        categories[category] = categories.get(category, 0.0) + row["total_self_time"] / 1000 / steps
    by_category = dict(sorted(categories.items(), key=lambda item: -item[1]))
    return {"kind": kind, "resolution": resolution, "batch_size": batch_size, "width": width, "steps": steps,
            "wall_ms_per_step": round(1000 * sum(timing.wall) / steps, 1),
            "op_ms_per_step": round(sum(categories.values()), 1),
            "ms_per_step_by_category": {name: round(ms, 1) for name, ms in by_category.items()},
            "top_ops": [{"type": r["type"], "name": r["operation"],
                         "category": op_category(r["type"], r["operation"]),
                         "ms_per_step": round(r["total_self_time"] / 1000 / steps, 1)}
                        for r in busy[:top]]}  # fmt: skip


# --- subprocesses ----------------------------------------------------------------------------------------


MEASURES: dict[str, Callable[..., dict[str, Any]]] = {
    "reference": time_classic_loop,
    "train_step": time_train_step,
    "matmul": measure_matmul_peak,
    "matmul_reduced": measure_matmul_reduced,
    "auto_precision": choose_auto_precision,
    "flops": measure_flops,
    "preprocess": measure_preprocess,
    "features": measure_features,
    "profile": profile_step,
}


def peak_rss_mib() -> float:
    """This process's peak resident memory so far, MiB (Linux reports ``ru_maxrss`` in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_measurement(measure: str, config: dict[str, Any], timeout_s: float = SUBPROCESS_TIMEOUT_S,
                    required: bool = True) -> dict:  # fmt: skip
    """Run ``MEASURES[measure](**config)`` in a fresh Python process; return its result and peak memory.

    ``RuntimeError`` with the end of the child's stderr when it fails; with ``required=False`` the
    failure is returned instead, as ``{"error": ...}`` (an emulated dtype some builds cannot run).
    """
    environment = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-m", "mammogan_lib.bench", "--measure", measure,
               "--config", json.dumps(config)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, env=environment)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        message = f"measurement {measure} {config} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        if not required:
            return {"error": message.splitlines()[0] + " " + (done.stderr.strip().splitlines() or [""])[-1]}
        raise RuntimeError(message)
    return json.loads(lines[-1])


def measure_in_this_process(measure: str, config: dict[str, Any]) -> dict[str, Any]:
    """The child's side of :func:`run_measurement`: the result plus this process's peak RSS."""
    return {**MEASURES[measure](**config), "peak_rss_mib": peak_rss_mib()}


# --- the report ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchOptions:
    """What one benchmark run measures (the CLI's flags)."""

    architecture: str = "baseline"
    resolution: int = 128
    batch_size: int = 32
    width: float = 1.0
    warmup: int = 3
    repeats: int = 10
    matmul_size: int = 2048
    preprocess: bool = True
    preprocess_images: int = 1570
    preprocess_workers: int = 2
    data_dir: str = "data"
    features: bool = True
    feature_batch_size: int = 32
    feature_repeats: int = 5
    jit_compile: bool = False  # (b) and (c) compiled with XLA: an experiment, not the default step


def mixed_is_native(machine: Mapping[str, Any]) -> bool:
    """Whether ``precision: mixed`` runs natively here: float16 on a GPU, or bfloat16 on a CPU with the
    flags for it (the parent process reads them; it never loads a framework)."""
    return bool(machine.get("gpus")) or bool(machine.get("native_bfloat16"))


def train_configs(options: BenchOptions, mixed_native: bool = True) -> dict[str, tuple[str, dict[str, Any]]]:
    """The training measurements, in :data:`TRAIN_MEASUREMENTS` order: name -> (measure, config).

    An emulated mixed precision is timed with :data:`EMULATED_REPEATS` steps after
    :data:`EMULATED_WARMUP` (fewer than ``options.repeats``): its steps are many times slower.
    """
    common = {"architecture": options.architecture, "resolution": options.resolution,
              "batch_size": options.batch_size, "width": options.width, "warmup": options.warmup,
              "repeats": options.repeats}  # fmt: skip
    ours = {**common, "jit_compile": options.jit_compile, "precision": "float32"}
    mixed = {**ours, "precision": "mixed"}
    if not mixed_native:
        mixed.update(warmup=min(options.warmup, EMULATED_WARMUP),
                     repeats=min(options.repeats, EMULATED_REPEATS))  # fmt: skip
    return {"reference": ("reference", common),
            "float32_thesis_layers": ("train_step", {**ours, "separate_upsampling": True}),
            "float32": ("train_step", ours),
            "mixed": ("train_step", mixed)}  # fmt: skip


def add_derived_figures(row: dict[str, Any], reference_ms: float, matmul: dict[str, Any]) -> dict[str, Any]:
    """Speed-up over (a), achieved GFLOP/s and its share of the float32 (and reduced-precision) matmul."""
    seconds = row["ms_per_step"] / 1000
    gflops = row["flops_per_step"] / seconds / 1e9
    row = {**row, "speedup_vs_reference": round(reference_ms / row["ms_per_step"], 3),
           "gflop_per_step": round(row["flops_per_step"] / 1e9, 2), "gflop_per_s": round(gflops, 1),
           "fraction_of_float32_matmul_peak": round(gflops / matmul["float32_peak_gflops"], 3)}  # fmt: skip
    reduced = matmul.get("reduced", {}).get(row["dtype_policy"].removeprefix("mixed_"), {})
    if row["dtype_policy"].startswith("mixed") and reduced.get("gflops"):
        row["fraction_of_reduced_matmul_peak"] = round(gflops / reduced["gflops"], 3)
    return row


def check_auto(rows: Mapping[str, Mapping[str, Any]], choice: Mapping[str, Any]) -> dict[str, Any]:
    """Whether ``auto``'s pick was right here: its policy's measured step at most :data:`AUTO_TOLERANCE`
    times float32's (float32 itself always is)."""
    measured = {row["dtype_policy"]: row["ms_per_step"] for name, row in rows.items()
                if name in ("float32", "mixed")}  # fmt: skip
    picked_ms = measured.get(choice["policy"])
    ratio = None if picked_ms is None else round(picked_ms / measured["float32"], 3)
    return {"policy": choice["policy"], "reason": choice["reason"], "ms_per_step": picked_ms,
            "vs_float32": ratio, "tolerance": AUTO_TOLERANCE,
            "right": ratio is not None and ratio <= AUTO_TOLERANCE,
            "calibration_ms_per_step": choice.get("calibration_ms_per_step"),
            "choice_s": choice.get("choice_s")}  # fmt: skip


def exp3_hours(ms_per_step: float, batch_size: int = 32) -> dict[str, float]:
    """Hours for the thesis's exp3 at ``ms_per_step``, for both readings of its "20,000 epochs".

    Reading 1: an epoch is a full pass over 500 images (15 steps of 32) -> 300,000 steps.
    Reading 2: an epoch is one batch -> 20,000 steps.
    """
    full_pass_steps = EXP3_EPOCHS * (EXP3_IMAGES // batch_size)
    hours = ms_per_step / 3.6e6
    return {"full_pass_steps": full_pass_steps, "full_pass_epochs_h": round(full_pass_steps * hours, 1),
            "one_batch_steps": EXP3_EPOCHS, "one_batch_epochs_h": round(EXP3_EPOCHS * hours, 1)}


def t4_estimate(flops_per_step: int, batch_size: int = 32) -> dict[str, Any]:
    """ESTIMATE (no GPU measured): our step on a Kaggle T4 from its FLOPs, the datasheet peak and an
    assumed utilisation range; ms/step and exp3 hours for both readings of "epoch"."""
    estimate: dict[str, Any] = {"kind": "estimate from FLOPs, datasheet peak and assumed utilisation; "
                                        "not a measurement"}  # fmt: skip
    for precision, peak in T4_PEAK_TFLOPS.items():
        for bound, utilisation in zip(("slow", "fast"), T4_ASSUMED_UTILISATION[precision], strict=True):
            ms = flops_per_step / (peak * 1e12 * utilisation) * 1000
            estimate[f"{precision}_{bound}"] = {"peak_tflops": peak, "assumed_utilisation": utilisation,
                                                "ms_per_step": round(ms, 2), **exp3_hours(ms, batch_size)}
    return estimate


def check_targets(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: {"target_speedup": target, "speedup": rows[name]["speedup_vs_reference"],
                   "met": rows[name]["speedup_vs_reference"] >= target}
            for name, target in TARGET_SPEEDUPS.items() if name in rows}  # fmt: skip


def run_benchmark(options: BenchOptions, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every measurement of one benchmark run, each in its own subprocess; the JSON-ready report.

    ``progress(message)`` is told what starts (``main`` prints it); the library prints nothing.
    """
    from mammogan_lib.provenance import git_state, hardware, package_versions

    report: dict[str, Any] = {"created": datetime.now(UTC).isoformat(timespec="seconds"),
                              "load_average_start": list(os.getloadavg()),
                              "options": options.__dict__.copy(), "machine": hardware(),
                              "packages": package_versions(), "git": git_state()}  # fmt: skip
    progress(f"matmul peak ({options.matmul_size}^2)")
    matmul = run_measurement("matmul", {"size": options.matmul_size})
    mixed_native = mixed_is_native(report["machine"])
    reduced = "float16" if report["machine"].get("gpus") else "bfloat16"
    progress(f"matmul {reduced} ({options.matmul_size}^2{'' if mixed_native else ', emulated'})")
    matmul["reduced"] = {reduced: run_measurement("matmul_reduced", {"size": options.matmul_size,
                                                                     "dtype": reduced}, required=False)}
    progress("FLOP count")
    shape = {"architecture": options.architecture, "resolution": options.resolution, "width": options.width,
             "batch_size": options.batch_size}  # fmt: skip
    flops = run_measurement("flops", shape)
    rows = {}
    for name, (measure, config) in train_configs(options, mixed_native).items():
        progress(f"training step: {TRAIN_LABELS[name]}")
        load_before = os.getloadavg()[0]
        label = TRAIN_LABELS[name] + (", XLA" if config.get("jit_compile") else "")
        rows[name] = {"label": label, **run_measurement(measure, config),
                      "load_average_1min_before": round(load_before, 2),
                      "load_average_1min_after": round(os.getloadavg()[0], 2)}  # fmt: skip
    reference_ms = rows["reference"]["ms_per_step"]
    rows = {name: add_derived_figures(row, reference_ms, matmul) for name, row in rows.items()}
    progress("the policy precision: auto picks")
    auto = check_auto(rows, run_measurement("auto_precision", shape))
    report.update(matmul_peak=matmul, flops=flops, train=rows, targets=check_targets(rows), auto=auto,
                  step_passes={"ours": [p.__dict__ for p in OUR_STEP_PASSES],
                               "reference": [p.__dict__ for p in CLASSIC_LOOP_PASSES]},
                  exp3_hours={name: exp3_hours(row["ms_per_step"], options.batch_size)
                              for name, row in rows.items()},
                  t4_estimate=t4_estimate(rows["float32"]["flops_per_step"], options.batch_size))  # fmt: skip
    if options.preprocess:
        progress(f"02_preprocess throughput ({options.preprocess_images} phantom images)")
        report["preprocess"] = run_measurement("preprocess", {"images": options.preprocess_images,
                                                              "workers": options.preprocess_workers,
                                                              "data_dir": options.data_dir})  # fmt: skip
    if options.features:
        report["features"] = {}
        for network in FEATURE_NETWORKS:
            progress(f"feature throughput: {network}")
            report["features"][network] = run_measurement("features", {
                "network": network, "batch_size": options.feature_batch_size,
                "resolution": options.resolution, "repeats": options.feature_repeats})  # fmt: skip
    report["load_average_end"] = list(os.getloadavg())
    return report


# --- text output ----------------------------------------------------------------------------------------


def format_report(report: dict[str, Any]) -> str:
    """The human-readable table of a report from :func:`run_benchmark`."""
    options, matmul, machine = report["options"], report["matmul_peak"], report["machine"]
    reduced = [f"tensorflow_{dtype} " + (f"{row['gflops']} GFLOP/s" if "gflops" in row else "failed")
               for dtype, row in matmul.get("reduced", {}).items()]  # fmt: skip
    yes_no = {key: "yes" if machine.get(key) else "no" for key in ("avx512", "native_bfloat16")}
    lines = [f"machine: {machine['cpu']}, {machine['cpu_count']} cores; CPU flags "
             f"{' '.join(machine.get('cpu_flags', [])) or '?'} (AVX-512: {yes_no['avx512']}, "
             f"native bfloat16: {yes_no['native_bfloat16']}); GPUs: "
             f"{', '.join(machine.get('gpus', [])) or 'none'}; load average at start "
             f"{report['load_average_start'][0]:.2f}, at end {report['load_average_end'][0]:.2f}",
             f"matmul {matmul['size']}^2 best of {matmul['repeats']}: " + ", ".join(
                 [f"{k} {v} GFLOP/s" for k, v in matmul["gflops"].items()] + reduced)
             + f"; float32 peak = {matmul['float32_peak_source']}",
             f"training: {options['architecture']} at {options['resolution']}x{options['resolution']}, "
             f"batch {options['batch_size']}, width {options['width']}; median of {options['repeats']} steps "
             f"after {options['warmup']} warm-up steps (an emulated policy: {EMULATED_REPEATS} after "
             f"{EMULATED_WARMUP})", ""]  # fmt: skip
    header = (f"{'measurement':<42}{'policy':>15}{'ms/step':>10}{'img/s':>8}{'vs (a)':>8}{'GFLOP/step':>12}"
              f"{'GFLOP/s':>9}{'% fp32 peak':>12}{'peak MiB':>10}{'CPU share':>10}"
              f"{'load 1m':>10}")  # fmt: skip
    lines += [header, "-" * len(header)]
    for row in report["train"].values():
        lines.append(f"{row['label']:<42}{row['dtype_policy']:>15}{row['ms_per_step']:>10.1f}"
                     f"{row['images_per_s']:>8.1f}{row['speedup_vs_reference']:>7.2f}x{row['gflop_per_step']:>12.1f}"
                     f"{row['gflop_per_s']:>9.1f}{100 * row['fraction_of_float32_matmul_peak']:>11.1f}%"
                     f"{row['peak_rss_mib']:>10.0f}{row['cpu_share_median']:>10.2f}"
                     f"{row['load_average_1min_before']:>5.1f}->"
                     f"{row['load_average_1min_after']:.1f}")  # fmt: skip
    lines.append("")
    for name, target in report["targets"].items():
        lines.append(f"target {report['train'][name]['label']}: >= {target['target_speedup']}x (a): "
                     f"{target['speedup']:.2f}x -> {'met' if target['met'] else 'MISSED'}")  # fmt: skip
    auto = report["auto"]
    verdict = "right" if auto["right"] else f"WRONG PICK (more than {auto['tolerance']:.2f}x float32's step)"
    ratio = f"{auto['vs_float32']:.2f}x float32's step" if auto["vs_float32"] is not None else "not timed"
    lines.append(f"precision auto picks {auto['policy']}: {auto['reason']} -> {ratio}: {verdict}")
    for name, hours in report["exp3_hours"].items():
        lines.append(f"exp3 with {report['train'][name]['label']}: {hours['full_pass_epochs_h']} h "
                     f"({hours['full_pass_steps']:,} steps), {hours['one_batch_epochs_h']} h "
                     f"({hours['one_batch_steps']:,} steps)")  # fmt: skip
    for key, value in report["t4_estimate"].items():
        if isinstance(value, dict):
            lines.append(f"T4 ESTIMATE {key}: {value['ms_per_step']} ms/step at "
                         f"{value['assumed_utilisation']:.0%} of {value['peak_tflops']} TFLOP/s -> "
                         f"exp3 {value['full_pass_epochs_h']} h / "
                         f"{value['one_batch_epochs_h']} h")  # fmt: skip
    if "preprocess" in report:
        pre = report["preprocess"]
        lines.append(f"02_preprocess: {pre['images']} phantom images ({pre['succeeded']} ok), "
                     f"{pre['workers']} workers: {pre['seconds']} s, {pre['images_per_s']} images/s; "
                     f"peak MiB main "
                     f"{pre['peak_rss_mib']:.0f}, worker {pre['worker_peak_rss_mib']:.0f}")  # fmt: skip
    for network, row in report.get("features", {}).items():
        weights = "pretrained" if row["pretrained"] else "RANDOM weights"
        lines.append(f"features {network} ({weights}; from {row['input_resolution']} px arrays, "
                     f"batch {row['batch_size']}): "
                     f"{row['ms_per_step']} ms/batch, {row['images_per_s']} images/s, "
                     f"peak {row['peak_rss_mib']:.0f} MiB")  # fmt: skip
    return "\n".join(lines)


# --- CLI ----------------------------------------------------------------------------------------------------


def parse_options(argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, BenchOptions]:
    defaults = BenchOptions()
    parser = argparse.ArgumentParser(prog="python -m mammogan_lib.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--architecture", default=defaults.architecture)
    parser.add_argument("--resolution", type=int, default=defaults.resolution)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--width", type=float, default=defaults.width)
    parser.add_argument("--warmup", type=int, default=defaults.warmup, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=defaults.repeats, help="timed steps (median)")
    parser.add_argument("--matmul-size", type=int, default=defaults.matmul_size)
    parser.add_argument("--skip-preprocess", action="store_true")
    parser.add_argument("--preprocess-images", type=int, default=defaults.preprocess_images,
                        help="phantom full mammograms (generated under --data-dir if missing)")
    parser.add_argument("--preprocess-workers", type=int, default=defaults.preprocess_workers)
    parser.add_argument("--data-dir", default=defaults.data_dir)
    parser.add_argument("--skip-features", action="store_true")
    parser.add_argument("--feature-batch-size", type=int, default=defaults.feature_batch_size)
    parser.add_argument("--feature-repeats", type=int, default=defaults.feature_repeats)
    parser.add_argument("--jit-compile", action="store_true", help="(b) and (c) with XLA (an experiment)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="the JSON report")
    parser.add_argument("--profile", nargs="+", choices=TRAIN_MEASUREMENTS, metavar="KIND",
                        help="instead of the benchmark: where the step's time goes (tf.profiler) for each "
                             f"KIND of {', '.join(TRAIN_MEASUREMENTS)}; writes profile.json next to "
                             "--output")  # fmt: skip
    parser.add_argument("--profile-steps", type=int, default=3)
    parser.add_argument("--measure", choices=sorted(MEASURES), help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--config", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    options = BenchOptions(
        architecture=args.architecture, resolution=args.resolution, batch_size=args.batch_size,
        width=args.width, warmup=args.warmup, repeats=args.repeats, matmul_size=args.matmul_size,
        preprocess=not args.skip_preprocess,
        preprocess_images=args.preprocess_images, preprocess_workers=args.preprocess_workers,
        data_dir=args.data_dir, features=not args.skip_features, feature_batch_size=args.feature_batch_size,
        feature_repeats=args.feature_repeats, jit_compile=args.jit_compile,
    )  # fmt: skip
    return args, options


def run_profiles(kinds: Sequence[str], options: BenchOptions, steps: int) -> dict[str, Any]:
    """:func:`profile_step` for each kind, each in its own subprocess (``runs/bench/profile/<kind>``)."""
    config = {"architecture": options.architecture, "resolution": options.resolution,
              "batch_size": options.batch_size, "width": options.width, "steps": steps}  # fmt: skip
    return {"created": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_average_start": list(os.getloadavg()),
            "profiles": {kind: run_measurement("profile", {**config, "kind": kind}) for kind in kinds},
            "load_average_end": list(os.getloadavg())}  # fmt: skip


def format_profiles(report: dict[str, Any], top: int = 12) -> str:
    """Per kind: ms per step by category, then the ``top`` ops."""
    lines = []
    for kind, profile in report["profiles"].items():
        lines.append(f"{TRAIN_LABELS[kind]}: wall {profile['wall_ms_per_step']} ms/step, ops "
                     f"{profile['op_ms_per_step']} ms/step (summed over threads)")  # fmt: skip
        categories = profile["ms_per_step_by_category"].items()
        lines += [f"  {ms:>8.1f} ms  {category}" for category, ms in categories]
        lines += [f"  {op['ms_per_step']:>8.1f} ms  {op['type']}  {op['name']}"
                  for op in profile["top_ops"][:top]]  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args, options = parse_options(argv)
    if args.measure:  # inside a child process: one measurement, one JSON line
        print(json.dumps(measure_in_this_process(args.measure, json.loads(args.config))), flush=True)
        return 0
    from mammogan_lib.files import write_json

    if args.profile:
        profiles = run_profiles(args.profile, options, args.profile_steps)
        write_json(args.output.with_name("profile.json"), profiles)
        print(format_profiles(profiles), flush=True)
        return 0
    started = time.perf_counter()
    report = run_benchmark(options, progress=lambda text: print(f"... {text}", file=sys.stderr, flush=True))
    arguments = list(argv) if argv is not None else sys.argv[1:]
    report["command"] = " ".join(["python -m mammogan_lib.bench", *arguments])
    report["wall_s"] = round(time.perf_counter() - started, 1)
    write_json(args.output, report)
    print(format_report(report), flush=True)
    print(f"\nwritten: {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
