"""Images from saved generators: N samples per checkpoint, grids across epochs, latent interpolations.

Everything is a function of ``seed``: the latent vectors come from ``numpy.random.default_rng(seed)`` and
the generator's own randomness (the StyleGAN-like model's noise injection) is re-seeded from ``seed``
before each call, so the same checkpoint and seed give the same images, and every checkpoint of a run is
shown the *same* latents (a grid across epochs shows one latent's image evolving, as in the thesis's
Table 4.2).

Written per checkpoint, into ``<run_dir>/generated/epoch_<n>/``::

    images.npy      float32 (N, R, R) in [-1, 1]: what the metrics stage reads
    0000.png ...    8-bit PNGs (-1 -> 0, +1 -> 255) for viewing and for tools that read image folders

and, for 05_metrics' metric-vs-epoch curves, a smaller set from every kept checkpoint (same latents):
``<run_dir>/generated_curve/epoch_<n>.npy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib import checkpoint as ckpt
from mammogan_lib import files
from mammogan_lib.imaging import to_uint8
from mammogan_lib.runs import RunPaths

ARRAY_FILE = "images.npy"


def select_checkpoints(run_dir: Path | str, epochs: Sequence[int]) -> list[Path]:
    """The checkpoints of ``epochs`` (``[]``: the newest one); ``FileNotFoundError`` naming what exists."""
    available = ckpt.list_checkpoints(run_dir)
    if not available:
        raise FileNotFoundError(
            f"no checkpoint in {ckpt.checkpoints_dir(run_dir)}: run 03_train_gan for this exp_id first"
        )
    if not epochs:
        return [available[-1]]
    by_epoch = {ckpt.checkpoint_epoch(path): path for path in available}
    missing = [epoch for epoch in epochs if epoch not in by_epoch]
    if missing:
        raise FileNotFoundError(
            f"parameter 'generate_epochs': no checkpoint for epochs {missing} in "
            f"{ckpt.checkpoints_dir(run_dir)}; saved epochs: {sorted(by_epoch)} (checkpoint_every, "
            "keep_last and keep_epochs decide which are kept)"
        )
    return [by_epoch[epoch] for epoch in sorted(set(epochs))]


def latent_vectors(count: int, latent_dim: int, seed: int) -> np.ndarray:
    """``count`` standard-normal latent vectors ``(count, latent_dim)`` float32, a function of ``seed``."""
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


def slerp_path(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` latents on the great circle from ``start`` to ``end`` (both ends included).

    Spherical rather than linear: a straight line between two Gaussian latents passes through vectors of
    unusually small norm, which the generator never saw in training.
    """
    if steps < 2:
        raise ValueError(f"an interpolation needs at least 2 steps, got {steps}")
    unit_start, unit_end = start / np.linalg.norm(start), end / np.linalg.norm(end)
    angle = float(np.arccos(np.clip(np.dot(unit_start, unit_end), -1.0, 1.0)))
    fractions = np.linspace(0.0, 1.0, steps)
    if angle < 1e-6:
        return np.stack([(1 - t) * start + t * end for t in fractions]).astype(np.float32)
    weights = [(np.sin((1 - t) * angle), np.sin(t * angle)) for t in fractions]
    return np.stack([(a * start + b * end) / np.sin(angle) for a, b in weights]).astype(np.float32)


def run_generator(generator: Any, latents: np.ndarray, seed: int, batch_size: int = 64) -> np.ndarray:
    """Images ``(N, R, R)`` float32 in [-1, 1] for ``latents`` (inference mode, noise seeded by ``seed``)."""
    import tensorflow as tf

    from mammogan_lib.training import reseed, seed_states

    states = seed_states(generator)
    outputs = []
    for start in range(0, len(latents), batch_size):
        # the noise of batch k is keyed on (seed, k): independent of how many batches came before
        reseed(states, tf.constant([seed, start], tf.int64))
        batch = generator(latents[start : start + batch_size], training=False)
        outputs.append(np.asarray(batch, dtype=np.float32)[..., 0])
    return np.concatenate(outputs) if outputs else np.zeros((0, 0, 0), np.float32)


def write_generated(images: np.ndarray, folder: Path) -> Path:
    """Write ``images.npy`` and one PNG per image into ``folder`` (replacing older ones); return it."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for index, pixels in enumerate(to_uint8(images)):
        if not cv2.imwrite(str(folder / f"{index:04d}.png"), pixels):
            raise OSError(f"could not write {folder / f'{index:04d}.png'}")
    files.save_array(folder / ARRAY_FILE, images.astype(np.float32))
    return folder


def generated_folder(run_dir: Path | str, checkpoint_dir: Path | str) -> Path:
    """Where the images of one checkpoint go: ``<run_dir>/generated/epoch_<n>``."""
    return RunPaths(run_dir).generated / Path(checkpoint_dir).name


def load_generated(run_dir: Path | str, epoch: int | None = None) -> tuple[np.ndarray, int]:
    """The generated images of ``epoch`` (``None``: the newest generated epoch) and that epoch."""
    root = RunPaths(run_dir).generated
    folders = sorted(p for p in root.glob("epoch_*") if (p / ARRAY_FILE).is_file())
    if not folders:
        raise FileNotFoundError(f"no generated images in {root}: run 04_generate for this exp_id first")
    by_epoch = {ckpt.checkpoint_epoch(p): p for p in folders}
    chosen = max(by_epoch) if epoch is None else epoch
    if chosen not in by_epoch:
        raise FileNotFoundError(f"no generated images for epoch {chosen} in {root}; found {sorted(by_epoch)}")
    return np.load(by_epoch[chosen] / ARRAY_FILE), chosen


def reset_curve_images(run_dir: Path | str) -> None:
    """Remove the curve images of an earlier 04 run (its checkpoints may since have been pruned)."""
    for path in RunPaths(run_dir).generated_curve.glob("epoch_*.npy"):
        path.unlink()


def write_curve_images(images: np.ndarray, run_dir: Path | str, checkpoint_dir: Path | str) -> Path:
    """Save one checkpoint's curve images as ``<run_dir>/generated_curve/epoch_<n>.npy``."""
    path = RunPaths(run_dir).generated_curve / f"{Path(checkpoint_dir).name}.npy"
    return files.save_array(path, images.astype(np.float32))


def load_curve_images(run_dir: Path | str) -> dict[int, np.ndarray]:
    """Epoch -> the curve images 04_generate wrote for it (empty when ``curve_count`` was 0)."""
    paths = sorted(RunPaths(run_dir).generated_curve.glob("epoch_*.npy"))
    return {ckpt.checkpoint_epoch(path.with_suffix("")): np.load(path) for path in paths}
