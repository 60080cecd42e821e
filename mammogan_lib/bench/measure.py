"""The measurements, each run in its own process by :mod:`.runner`: train steps, the classic loop,
the matmul peak, the policy ``auto`` picks, 02_preprocess and feature-network throughput."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.bench.classic import build_classic_loop
from mammogan_lib.bench.flops import CLASSIC_LOOP_PASSES, OUR_STEP_PASSES, models_forward_flops, step_flops
from mammogan_lib.core.timing import summarise, time_calls

# --- timing ----------------------------------------------------------------------------------------------


def bench_settings(
    architecture: str,
    resolution: int,
    batch_size: int,
    precision: str,
    width: float,
    seed: int,
    jit_compile: bool = False,
    backend: str = "tensorflow",
) -> Any:
    """The :class:`~mammogan_lib.core.config.TrainConfig` of a timing: ``params/base.yaml``'s values (the
    thesis's optimiser settings) for everything but the size, the precision and the seed. Its run folder
    is a fresh temporary one: a timing never trains into a run, and ``auto`` finds no checkpoint there."""
    import tempfile

    from mammogan_lib.core.config import TrainConfig

    return TrainConfig(
        exp_id="bench",
        runs_dir=tempfile.mkdtemp(prefix="mammogan-bench-"),
        architecture=architecture,
        resolution=resolution,
        batch_size=batch_size,
        precision=precision,
        width=width,
        seed=seed,
        jit_compile=jit_compile,
        backend=backend,
    )


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
    backend: str = "tensorflow",
) -> dict[str, Any]:
    """Our compiled train step (:mod:`mammogan_lib.gan.training`): median wall time of one step.

    One step: ``fake = G(z)`` once, D on ``batch_size`` real and ``batch_size`` fake images, both
    gradients, both Adam updates (:data:`OUR_STEP_PASSES`); ``flops_per_step`` is their analytic count.
    ``jit_compile``: compile the step with XLA (the ``jit_compile`` parameter) instead of the TF graph.
    ``separate_upsampling``: models in the thesis's two-layer upsampling blocks.
    """
    from mammogan_lib.gan.trainers import build_trainer

    settings = bench_settings(
        architecture, resolution, batch_size, precision, width, seed, jit_compile, backend
    )
    trainer = build_trainer(
        random_images(2 * batch_size, resolution, seed), settings, separate_upsampling=separate_upsampling
    )
    batch = np.arange(batch_size)
    timing = time_calls(lambda: trainer.train_step(batch), warmup, repeats)  # returns numpy: finished
    per_image = models_forward_flops(trainer.generator, trainer.discriminator)
    return {
        "architecture": architecture,
        "resolution": resolution,
        "batch_size": batch_size,
        "width": width,
        "precision": precision,
        "dtype_policy": trainer.dtype_policy,
        "backend": backend,
        "jit_compile": jit_compile,
        "separate_upsampling": separate_upsampling,
        "warmup": warmup,
        "repeats": repeats,
        **summarise(timing, batch_size),
        "forward_flops_per_image": per_image,
        "flops_per_step": step_flops(OUR_STEP_PASSES, per_image, batch_size),
    }


def time_classic_loop(
    architecture: str = "baseline",
    resolution: int = 128,
    batch_size: int = 32,
    width: float = 1.0,
    warmup: int = 3,
    repeats: int = 20,
    seed: int = 0,
    backend: str = "tensorflow",
) -> dict[str, Any]:
    """The reference (a): median wall time of one iteration of :class:`ClassicLoop`, float32.

    One iteration: D forward + backward on the real batch, G forward (``predict``), D forward + backward
    on the fakes, then G forward again, D forward and both backwards through the combined model
    (:data:`CLASSIC_LOOP_PASSES`); ``flops_per_step`` is their analytic count.
    """
    settings = bench_settings(architecture, resolution, batch_size, "float32", width, seed, backend=backend)
    loop = build_classic_loop(random_images(2 * batch_size, resolution, seed), settings)
    timing = time_calls(loop.step, warmup, repeats)  # train_on_batch returns floats: finished
    per_image = models_forward_flops(loop.generator, loop.discriminator)
    return {
        "architecture": architecture,
        "resolution": resolution,
        "batch_size": batch_size,
        "width": width,
        "precision": "float32",
        "dtype_policy": "float32",
        "warmup": warmup,
        "repeats": repeats,
        **summarise(timing, batch_size),
        "forward_flops_per_image": per_image,
        "flops_per_step": step_flops(CLASSIC_LOOP_PASSES, per_image, batch_size),
    }


# --- matmul peak -----------------------------------------------------------------------------------------


def _best_matmul_gflops(multiply: Callable[[], Any], size: int, repeats: int) -> float:
    timing = time_calls(multiply, warmup=1, repeats=repeats)
    return round(2 * size**3 / min(timing.wall) / 1e9, 1)


def measure_matmul_peak(size: int = 2048, repeats: int = 5, backend: str = "tensorflow") -> dict[str, Any]:
    """GFLOP/s of a ``size x size`` float32 matrix product, best of ``repeats``: the machine's practical
    peak. NumPy (its BLAS) and the Keras backend's own framework (what our train step uses; on a GPU its
    device); the peak is the larger."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    gflops = {
        "numpy_float32": _best_matmul_gflops(lambda: a @ b, size, repeats),
        f"{backend}_float32": _best_matmul_gflops(backend_matmul(backend, a, b, "float32"), size, repeats),
    }
    source = max(gflops, key=gflops.get)
    return {
        "size": size,
        "repeats": repeats,
        "gflops": gflops,
        "float32_peak_gflops": gflops[source],
        "float32_peak_source": source,
    }


def measure_matmul_reduced(
    size: int = 2048, repeats: int = 5, dtype: str = "bfloat16", backend: str = "tensorflow"
) -> dict[str, Any]:
    """GFLOP/s of the backend's ``size x size`` matrix product in ``dtype`` (bfloat16 or float16), best of
    ``repeats``: the honest ceiling for mixed precision (emulated, it shows the cliff)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype=np.float32) for _ in range(2))
    gflops = _best_matmul_gflops(backend_matmul(backend, a, b, dtype), size, repeats)
    return {"dtype": dtype, "backend": backend, "gflops": gflops}


def backend_matmul(backend: str, a: np.ndarray, b: np.ndarray, dtype: str) -> Callable[[], Any]:
    """A call of ``a @ b`` in ``dtype`` on ``backend``'s framework and default device, returning only when
    the product is computed (eager CPU TensorFlow is synchronous; reading one element makes sure)."""
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        ja, jb = (jnp.asarray(m, dtype) for m in (a, b))
        product = jax.jit(jnp.matmul)
        return lambda: product(ja, jb).block_until_ready()
    if backend == "torch":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        ta, tb = (torch.as_tensor(m, device=device).to(getattr(torch, dtype)) for m in (a, b))
        synchronise = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        return lambda: (torch.mm(ta, tb), synchronise())
    tf = _tensorflow()
    ta, tb = (tf.constant(m, dtype) for m in (a, b))
    return lambda: tf.matmul(ta, tb)[0, 0].numpy()


def _tensorflow() -> Any:
    from mammogan_lib.core.frameworks import import_keras

    import_keras()  # sets the backend and the log level before tensorflow loads
    import tensorflow as tf

    return tf


def choose_auto_precision(
    architecture: str = "baseline",
    resolution: int = 128,
    batch_size: int = 32,
    width: float = 1.0,
    seed: int = 0,
    backend: str = "tensorflow",
) -> dict[str, Any]:
    """The policy ``precision: auto`` picks for these settings on this machine (and its calibration)."""
    from mammogan_lib.gan.trainers import build_trainer

    started = time.perf_counter()
    settings = bench_settings(architecture, resolution, batch_size, "auto", width, seed, backend=backend)
    trainer = build_trainer(random_images(2 * batch_size, resolution, seed), settings)
    return {**trainer.precision.as_dict(), "choice_s": round(time.perf_counter() - started, 1)}


# --- 02_preprocess throughput --------------------------------------------------------------------------


def phantom_spec(images: int, height: int = 1024) -> Any:
    """The phantom of ``params/base.yaml`` (500 healthy images per healthy set), with ``images`` full
    mammograms: at the default 1,570 it is the folder the pipeline already wrote, so it is reused."""
    from mammogan_lib.data.phantom import PhantomSpec

    return PhantomSpec(
        n_images=images,
        height=height,
        seed=0,
        cut_contour_fraction=0.3,
        n_healthy=500,
        n_healthy_other_source=500,
    )


def preprocess_with_peak_memory(task: tuple[str, str, int, str]) -> tuple[bool, int]:
    """Preprocess one image in a worker; return whether it succeeded and the worker's peak RSS (KiB).

    Module-level so the process pool can import it; the array is dropped so that only the work is timed,
    not pickling 1,570 arrays back to the parent (the pipeline does send them back; they are 64 KiB each).
    """
    from mammogan_lib.data.preprocess import preprocess_image

    result = preprocess_image(task)
    return result.array is not None, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def measure_preprocess(
    images: int = 1570,
    workers: int = 2,
    resolution: int = 128,
    data_dir: str = "data",
    resize_mode: str = "pad",
) -> dict[str, Any]:
    """Images/s of 02_preprocess's per-image work over the phantom's full mammograms (~1024 px high).

    The phantom is generated first when ``<data_dir>/phantom/`` does not hold it (its time is reported
    separately). The wall time includes starting the worker pool, as 02_preprocess pays it too.
    """
    from mammogan_lib.core.parallel import parallel_map
    from mammogan_lib.data.datasets.loading import load_dataset
    from mammogan_lib.data.phantom import ensure_phantom, phantom_folder, phantom_matches

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
    return {
        "phantom": str(root),
        "phantom_reused": reused,
        "phantom_s": None if reused else round(phantom_s, 1),
        "images": len(tasks),
        "succeeded": sum(ok for ok, _ in results),
        "workers": workers,
        "resolution": resolution,
        "resize_mode": resize_mode,
        "seconds": round(seconds, 2),
        "images_per_s": round(len(tasks) / seconds, 2),
        "worker_peak_rss_mib": round(max(rss for _, rss in results) / 1024, 1),
    }


# --- feature-network throughput ---------------------------------------------------------------------------


FEATURE_NETWORKS: tuple[str, ...] = ("resnet50", "inception")
"""ResNet50 (the SVM's features, 06_svm) and InceptionV3 (FID/KID, 05_metrics)."""


def load_feature_network(name: str) -> Any:
    """:mod:`mammogan_lib.evaluate.features`'s network ``name``: pretrained where the weights are on this
    machine,
    else random weights (allowed here: a forward pass costs the same whatever the weights' values)."""
    from mammogan_lib.evaluate import features

    loader = features.load_resnet50 if name == "resnet50" else features.load_inception
    return loader(allow_random=True)


def measure_features(
    network: str, batch_size: int = 32, resolution: int = 128, warmup: int = 1, repeats: int = 5
) -> dict[str, Any]:
    """Images/s of :func:`mammogan_lib.evaluate.features.extract_features` on batches of ``(batch, R, R)``
    arrays in [-1, 1], as 05_metrics and 06_svm call it: the resize to 224 px (ResNet50) or 299 px
    (Inception), the three channels and the network's forward pass, in inference mode on the CPU.
    """
    from mammogan_lib.core.frameworks import import_torch_side
    from mammogan_lib.evaluate.features import extract_features

    torch, _ = import_torch_side()
    loaded = load_feature_network(network)
    images = random_images(batch_size, resolution, seed=0)
    timing = time_calls(lambda: extract_features(images, loaded, batch_size=batch_size), warmup, repeats)
    return {
        "network": network,
        "pretrained": loaded.pretrained,
        "weights": loaded.description,
        "input_resolution": resolution,
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "warmup": warmup,
        "repeats": repeats,
        **summarise(timing, batch_size),
    }
