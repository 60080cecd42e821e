"""Atomic, complete training checkpoints: both models, both optimisers, counters, parameters.

One checkpoint is one folder ``<run_dir>/checkpoints/epoch_000100/`` (the epoch it was written after)::

    generator.weights.h5        G's weights, BatchNorm moving statistics included (Keras format)
    discriminator.weights.h5    D's weights
    generator_ema.weights.h5    the moving average of G's weights, with ``g_ema_decay`` > 0 (the one that
                                generates: :func:`load_generator`)
    g_optimizer.npz             every variable of G's optimiser, in order: iterations, learning rate,
    d_optimizer.npz             Adam moments (and a LossScaleOptimizer's scale and counter, for float16)
    state.json                  epoch, step and the trainer's other counters
    params.json                 the parameters the run was started with
    manifest.json               each file's size and SHA-256 (written last)

A resume is exact because nothing else carries state between steps: the training step draws all its randomness
statelessly from ``(seed, step)`` and re-seeds the models' Keras ``SeedGenerator`` s (Dropout, noise) from it
at every step (see :mod:`mammogan_lib.gan.training`). Keras does not save a SeedGenerator's state in
``.weights.h5`` files (verified with keras 3.15: a reloaded Dropout gets a fresh random seed), which is why
the training step does not rely on it.

Atomicity: a checkpoint is written into ``epoch_000100.tmp-<pid>/`` and renamed to its final name with
``os.replace`` only when complete (its manifest written, every file flushed to disk). :func:`list_checkpoints`
only accepts ``epoch_<digits>`` folders holding a ``state.json``, so a write killed half-way leaves a
``.tmp-`` folder that is ignored and deleted on the next save. Retention (:func:`apply_retention`) keeps the
last ``keep_last`` checkpoints plus those whose epoch falls in ``keep_epochs``.

Integrity: a file can still be damaged after its checkpoint was published (a disk error, a copy cut short, a
hand edit). :func:`checkpoint_problems` compares every file with the manifest; :func:`newest_good_checkpoint`
(what a resume starts from) sets a damaged checkpoint aside, renamed ``epoch_000100.damaged-<time>`` and
never deleted, says so in one line, and goes on to the one before: retention's ``keep_last`` is what makes
that fallback possible. Checkpoints written before manifests existed (format 3 and older) are accepted
unverified; one of them that cannot be read is set aside the same way by the resume.

This module knows nothing of the trainer: it saves and restores named models and optimisers, so
``load_generator`` (used by the generate stage) only needs the saved ``params.json``.

Format versions (``state.json``): 4 since checkpoints carry a manifest; 3 since a spectrally normalised
D's layers are :class:`~mammogan_lib.gan.models.layers.SpectralNorm`; 2 since the generators compute each
``UpSampling2D -> Conv2D`` pair as one ``UpsampleConv2D`` layer; 1 before. Keras's weight files name their
groups after layer classes, so an older file is read into a twin of the model built with the older layers
(the same variables) and its weights copied over by path: old runs still resume and generate.
A version-1 generator's twin has the two separate upsampling layers; the twin of a version-1 or -2 D with
``d_spectral_norm`` has Keras's ``SpectralNormalization``, whose kernel already holds ``W / sigma``: it
becomes the new layer's ``W``, whose own ``sigma`` is then 1 up to the power iteration's estimate.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.core import progress
from mammogan_lib.core.config import keep_range
from mammogan_lib.core.files import write_json
from mammogan_lib.core.frameworks import import_keras

# Finding a run's checkpoints is part of the run-folder contract, on the ground floor (where the failure
# messages read it too); it is this module's API as well.
from mammogan_lib.core.run_paths import STATE_FILE as STATE_FILE
from mammogan_lib.core.run_paths import checkpoint_epoch as checkpoint_epoch
from mammogan_lib.core.run_paths import checkpoint_name as checkpoint_name
from mammogan_lib.core.run_paths import checkpoints_dir as checkpoints_dir
from mammogan_lib.core.run_paths import latest_checkpoint as latest_checkpoint
from mammogan_lib.core.run_paths import list_checkpoints as list_checkpoints
from mammogan_lib.gan.schedule import phase_of_epoch, settings_phases

PARAMS_FILE = "params.json"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 4
MANIFEST_FORMAT = 4
"""The first format whose checkpoints carry a manifest: from it on, a checkpoint without one is damaged."""
SEPARATE_UPSAMPLING_FORMAT = 1
"""The last format whose generator files were written by generators with separate UpSampling2D layers."""
KERAS_SPECTRAL_NORM_FORMAT = 2
"""The last format whose spectrally normalised D files were written with Keras's SpectralNormalization."""
TEMPORARY_MARKER = ".tmp-"
DAMAGED_MARKER = ".damaged-"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not fit the models/optimisers it is loaded into."""


class DamagedCheckpoint(CheckpointError):
    """A checkpoint's files do not match its manifest, or cannot be read."""

    def __init__(self, path: Path, problems: Sequence[str]) -> None:
        self.path, self.problems = Path(path), list(problems)
        super().__init__(f"checkpoint {self.path} is damaged: {'; '.join(self.problems)}")


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` read besides the variables it assigned."""

    path: Path
    state: dict[str, Any]
    params: dict[str, Any]

    @property
    def epoch(self) -> int:
        return int(self.state["epoch"])

    @property
    def step(self) -> int:
        return int(self.state["step"])


def read_params(checkpoint_dir: Path | str) -> dict[str, Any]:
    """The parameters saved with a checkpoint."""
    return _read_json(Path(checkpoint_dir) / PARAMS_FILE)


def read_state(checkpoint_dir: Path | str) -> dict[str, Any]:
    """The counters saved with a checkpoint (``epoch``, ``step``, ...)."""
    return _read_json(Path(checkpoint_dir) / STATE_FILE)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path.parent} is not a complete checkpoint: {path.name} is missing")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedCheckpoint(path.parent, [f"{path.name} is not valid JSON ({error})"]) from None


# --- saving --------------------------------------------------------------------------------------------


def save_checkpoint(
    run_dir: Path | str,
    epoch: int,
    models: Mapping[str, Any],
    optimizers: Mapping[str, Any],
    state: Mapping[str, Any],
    params: Mapping[str, Any],
) -> Path:
    """Write ``<run_dir>/checkpoints/epoch_<epoch>/`` atomically and return its path.

    ``models`` maps a name to a Keras model (saved as ``<name>.weights.h5``), ``optimizers`` a name to a
    built Keras optimiser (saved as ``<name>.npz``). Leftover ``.tmp-`` folders of killed writes are
    deleted first. An existing checkpoint of the same epoch is replaced.
    """
    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    clean_temporary(run_dir)
    final = root / checkpoint_name(epoch)
    tmp = root / f"{final.name}{TEMPORARY_MARKER}{os.getpid()}"
    tmp.mkdir()
    for name, model in models.items():
        model.save_weights(str(tmp / f"{name}.weights.h5"))
    for name, optimizer in optimizers.items():
        save_optimizer(optimizer, tmp / f"{name}.npz")
    write_json(tmp / PARAMS_FILE, dict(params))
    write_json(tmp / STATE_FILE, {"format_version": FORMAT_VERSION, **state, "epoch": epoch})
    write_json(tmp / MANIFEST_FILE, {"files": _describe_files(tmp)})
    _fsync_files(tmp)
    _replace_folder(tmp, final)
    return final


def _replace_folder(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``; an existing ``target`` is moved aside first, then deleted."""
    if target.exists():
        aside = target.with_name(f"{target.name}{TEMPORARY_MARKER}old-{os.getpid()}")
        os.replace(target, aside)
        os.replace(source, target)
        shutil.rmtree(aside)
    else:
        os.replace(source, target)


def _fsync_files(folder: Path) -> None:
    """Flush the folder's files to disk, so the rename never publishes data still in the page cache."""
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())


def _describe_files(folder: Path) -> dict[str, dict[str, Any]]:
    return {
        path.name: {"bytes": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(folder.iterdir())
        if path.is_file() and path.name != MANIFEST_FILE
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def clean_temporary(run_dir: Path | str) -> list[Path]:
    """Delete the ``.tmp-`` folders that killed writes left in ``<run_dir>/checkpoints``; return them."""
    root = checkpoints_dir(run_dir)
    if not root.is_dir():
        return []
    stale = [path for path in root.iterdir() if path.is_dir() and TEMPORARY_MARKER in path.name]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def save_optimizer(optimizer: Any, path: Path) -> None:
    """Save every variable of a built optimiser, in order (``v0000``, ...), with their paths (``names``)."""
    if not optimizer.built:
        raise CheckpointError("the optimiser is not built; call optimizer.build(model.trainable_variables)")
    arrays = {f"v{index:04d}": np.asarray(v.numpy()) for index, v in enumerate(optimizer.variables)}
    names = np.array([v.path for v in optimizer.variables], dtype=str)
    with open(path, "wb") as handle:
        np.savez(handle, names=names, **arrays)


# --- verifying -----------------------------------------------------------------------------------------


def checkpoint_problems(checkpoint_dir: Path | str) -> list[str]:
    """What is wrong with a checkpoint's files against its manifest (each file's presence, size and SHA-256),
    one phrase per file; empty when it is whole. A checkpoint written before manifests existed has
    nothing to be compared with: only its ``state.json`` is read."""
    path = Path(checkpoint_dir)
    if not (path / MANIFEST_FILE).is_file():
        try:
            version = read_state(path).get("format_version", SEPARATE_UPSAMPLING_FORMAT)
        except CheckpointError as error:
            return getattr(error, "problems", [str(error)])
        return [f"{MANIFEST_FILE} is missing"] if version >= MANIFEST_FORMAT else []
    try:
        listed = json.loads((path / MANIFEST_FILE).read_text())["files"]
        expected = {name: (int(entry["bytes"]), str(entry["sha256"])) for name, entry in listed.items()}
    except (ValueError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as error:
        return [f"{MANIFEST_FILE} cannot be read ({type(error).__name__}: {error})"]
    problems = []
    for name, (size, digest) in expected.items():
        file = path / name
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif file.stat().st_size != size:
            problems.append(f"{name} has {file.stat().st_size:,} bytes, its manifest says {size:,}")
        elif _sha256(file) != digest:
            problems.append(f"{name}'s bytes differ from its manifest's SHA-256 (same size, other contents)")
    return problems


def verify_checkpoint(checkpoint_dir: Path | str) -> Path:
    """``checkpoint_dir`` if its files match its manifest, else :class:`DamagedCheckpoint` naming each."""
    problems = checkpoint_problems(checkpoint_dir)
    if problems:
        raise DamagedCheckpoint(Path(checkpoint_dir), problems)
    return Path(checkpoint_dir)


def set_aside(checkpoint_dir: Path | str, problems: Sequence[str]) -> Path:
    """Rename a damaged checkpoint out of the resume's way (``epoch_000100.damaged-<time>``, which no listing
    takes for a checkpoint), say so in one line, and return its new path. Nothing is deleted."""
    path = Path(checkpoint_dir)
    aside = path.with_name(f"{path.name}{DAMAGED_MARKER}{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(path, aside)
    progress.warn(f"checkpoint {path} is damaged ({'; '.join(problems)}): set aside as {aside.name}")
    return aside


def newest_good_checkpoint(run_dir: Path | str) -> Path | None:
    """The newest checkpoint of ``run_dir`` whose files match its manifest, or ``None``; every newer one,
    damaged, is set aside on the way (:func:`set_aside`)."""
    for path in reversed(list_checkpoints(run_dir)):
        problems = checkpoint_problems(path)
        if not problems:
            return path
        set_aside(path, problems)
    return None


# --- loading -------------------------------------------------------------------------------------------


def load_checkpoint(
    checkpoint_dir: Path | str, models: Mapping[str, Any], optimizers: Mapping[str, Any]
) -> Checkpoint:
    """Load a checkpoint's weights into ``models`` and optimiser state into the (built) ``optimizers``."""
    path = Path(checkpoint_dir)
    state, params = read_state(path), read_params(path)
    for name, model in models.items():
        load_model_weights(model, path, name)
    for name, optimizer in optimizers.items():
        load_optimizer(optimizer, _require(path / f"{name}.npz"))
    return Checkpoint(path=path, state=state, params=params)


def load_model_weights(model: Any, checkpoint_dir: Path, name: str) -> None:
    """Load ``<name>.weights.h5`` of a checkpoint into ``model``, whatever the checkpoint's format version.

    A generator file of format 1 is read into a generator rebuilt from ``params.json`` with separate
    upsampling layers, and a spectrally normalised D's file of format 1 or 2 into a copy of ``model`` with
    Keras's ``SpectralNormalization``; their weights are then copied by path (the same variables; see the
    module doc).
    """
    weights = _require(checkpoint_dir / f"{name}.weights.h5")
    version = read_state(checkpoint_dir).get("format_version", SEPARATE_UPSAMPLING_FORMAT)
    if name == "generator" and version <= SEPARATE_UPSAMPLING_FORMAT:
        twin = _build_saved_generator(checkpoint_dir, separate_upsampling=True)
    elif (
        name == "discriminator"
        and version <= KERAS_SPECTRAL_NORM_FORMAT
        and read_params(checkpoint_dir).get("d_spectral_norm")
    ):
        twin = with_keras_spectral_normalization(model)
    else:
        model.load_weights(str(weights))
        return
    twin.load_weights(str(weights))
    read = {variable.path: variable for variable in twin.weights}
    missing = [variable.path for variable in model.weights if variable.path not in read]
    if missing:
        raise CheckpointError(f"{weights} (format {version}) lacks the weights {missing} of the model")
    for variable in model.weights:  # by path: Keras's SpectralNormalization holds them in another order
        variable.assign(read[variable.path].value)


def with_keras_spectral_normalization(model: Any) -> Any:
    """A copy of ``model`` whose :class:`~mammogan_lib.gan.models.layers.SpectralNorm` layers are Keras's
    ``SpectralNormalization`` of the same inner layer (the older D's layers, with the same variables)."""
    from mammogan_lib.gan.models.layers import SpectralNorm

    keras = import_keras()

    def older(layer: Any) -> Any:
        if isinstance(layer, SpectralNorm):
            inner = layer.layer.__class__.from_config(layer.layer.get_config())
            return keras.layers.SpectralNormalization(inner, power_iterations=1, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=older)


def _build_saved_generator(checkpoint_dir: Path, separate_upsampling: bool = False) -> Any:
    from mammogan_lib.gan.models import build_generator

    params = read_params(checkpoint_dir)
    missing = [key for key in ("architecture", "resolution", "latent_dim", "width") if key not in params]
    if missing:
        raise CheckpointError(f"{checkpoint_dir / PARAMS_FILE} lacks {missing}; cannot rebuild the generator")
    shape = (params["architecture"], params["resolution"], params["latent_dim"], params["width"])
    n_classes = len(params.get("classes") or []) if params.get("conditional") else 0
    if params.get("progressive_resolutions"):
        from mammogan_lib.gan.models.progressive import build_stage_generator

        phase = phase_of_epoch(settings_phases(params), int(read_state(checkpoint_dir)["epoch"]))
        if phase.resolution != params["resolution"] or phase.fading:
            _, resolution, latent_dim, width = shape
            stage = (phase.resolution, resolution, phase.fading, latent_dim, width, separate_upsampling)
            return build_stage_generator(*stage, n_classes=n_classes)
    return build_generator(*shape, separate_upsampling=separate_upsampling, n_classes=n_classes)


def _require(path: Path) -> Path:
    if not path.is_file():
        raise CheckpointError(f"{path.parent} is not a complete checkpoint: {path.name} is missing")
    return path


def load_optimizer(optimizer: Any, path: Path) -> None:
    """Assign the variables saved by :func:`save_optimizer` back, in order, checking count and shapes."""
    if not optimizer.built:
        raise CheckpointError(
            "build the optimiser before loading: optimizer.build(model.trainable_variables)"
        )
    try:
        with np.load(path, allow_pickle=False) as saved:
            names = list(saved["names"])
            values = [saved[f"v{index:04d}"] for index in range(len(names))]
    except (OSError, ValueError, KeyError, EOFError) as error:  # numpy's own advice here is allow_pickle
        reason = f"{path.name} is not a readable optimiser archive ({type(error).__name__})"
        raise DamagedCheckpoint(path.parent, [reason]) from None
    variables = optimizer.variables
    if len(values) != len(variables):
        raise CheckpointError(
            f"{path} holds {len(values)} optimiser variables but the optimiser has {len(variables)} "
            "(saved with another precision, loss scaling or model?)"
        )
    for name, value, variable in zip(names, values, variables, strict=True):
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(
                f"{path}: variable {name!r} has shape {value.shape}, the optimiser's {variable.path!r} "
                f"has {tuple(variable.shape)}"
            )
    for value, variable in zip(values, variables, strict=True):
        variable.assign(value)


AVERAGED_GENERATOR = "generator_ema"
"""The file stem of the moving average of G's weights (``g_ema_decay``)."""


def generator_weights_name(checkpoint_dir: Path | str) -> str:
    """Which of a checkpoint's generators makes images: the average of G's weights where the checkpoint has
    one, else G (``generator_ema`` or ``generator``)."""
    averaged = Path(checkpoint_dir) / f"{AVERAGED_GENERATOR}.weights.h5"
    return AVERAGED_GENERATOR if averaged.is_file() else "generator"


def load_generator(checkpoint_dir: Path | str) -> Any:
    """Rebuild the generator from a checkpoint's ``params.json`` and load its weights (float32): those of the
    moving average of G where the run kept one (``g_ema_decay``), else G's, after checking the files against
    the manifest (:class:`DamagedCheckpoint`). A checkpoint of an earlier stage of a progressive run gives
    its stage's generator, its images upsampled to the run's resolution (:mod:`mammogan_lib.gan.progressive`).

    Returns a ``keras.Model``: latent ``(N, latent_dim)`` -> images ``(N, R, R, 1)`` in [-1, 1] (a
    conditional run's: ``[latent, class (N,) int32]``); call it with ``training=False`` (BatchNorm moving
    statistics).
    """
    path = verify_checkpoint(checkpoint_dir)
    generator = _build_saved_generator(path)
    load_model_weights(generator, path, generator_weights_name(path))
    if read_params(path).get("progressive_resolutions"):
        from mammogan_lib.gan.models.progressive import at_resolution

        return at_resolution(generator, int(read_params(path)["resolution"]))
    return generator


# --- retention -----------------------------------------------------------------------------------------


def apply_retention(run_dir: Path | str, keep_last: int, keep_epochs: Sequence[int] = ()) -> list[Path]:
    """Delete the checkpoints that are neither among the last ``keep_last`` nor in ``keep_epochs``."""
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1 (the resume point), got {keep_last}")
    found = list_checkpoints(run_dir)
    window = keep_range(keep_epochs)
    keep = set(found[-keep_last:])
    if window:
        keep |= {p for p in found if window[0] <= checkpoint_epoch(p) <= window[1]}
    deleted = [path for path in found if path not in keep]
    for path in deleted:
        shutil.rmtree(path)
    return deleted
