"""Images from saved generators: N samples per checkpoint, grids across epochs, latent interpolations.

Everything is a function of ``seed``: the latent vectors come from ``numpy.random.default_rng(seed)`` and
the generator's own randomness (the StyleGAN-like model's noise injection) is re-seeded from ``seed``
before each call, so the same checkpoint and seed give the same images, and every checkpoint of a run is
shown the *same* latents (a grid across epochs shows one latent's image evolving, as in the thesis's
Table 4.2).

Written per checkpoint, into ``<run_dir>/generated/epoch_<n>/``::

    images.npy      float32 (N, R, R) in [-1, 1]: what the metrics stage reads
    0000.png ...    8-bit PNGs (-1 -> 0, +1 -> 255) for viewing and for tools that read image folders

A conditional run's (``conditional: true``) images are drawn with classes (:func:`generation_classes`: the
training set's class shares, a function of ``seed``); its folder holds ``images.npy`` (every class) with
``classes.json`` (the classes and each image's class) beside it, and the PNGs per class in
``<class>/0000.png ...``.

And, for 05_metrics' metric-vs-epoch curves, a smaller set from every kept checkpoint (same latents):
``<run_dir>/generated_curve/epoch_<n>.npy``.

**A reusable generator.** :func:`export_generator` writes the chosen checkpoint's generator as one
standalone ``<run_dir>/export/generator.keras`` with a JSON model card beside it
(:mod:`mammogan_lib.gan.model_card`). Anyone can then write PNGs from it without the rest of the pipeline (as
medigan's ``generate`` does)::

    python -m mammogan_lib.gan.generate runs/exp3/export/generator.keras --count 100 --out synthetic/ --seed 0

The command loads the file with the project's registered layers (:mod:`mammogan_lib.gan.models.layers`) and
imports nothing of training; the same file and seed give the same images as :func:`run_generator` on the
trained generator. ``--class mass`` asks a conditional generator for one of its classes (without it, the
classes are drawn as 04 draws them); an unconditional generator accepts ``--class`` only when its model
card says it was trained on that one class.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.core import files
from mammogan_lib.core.frameworks import import_keras
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.data.conditioning import class_labels_from_params, draw_classes
from mammogan_lib.data.imaging import to_uint8
from mammogan_lib.gan import checkpoint as ckpt
from mammogan_lib.gan import model_card as cards
from mammogan_lib.gan.seeding import reseed, seed_states

ARRAY_FILE = "images.npy"
CLASSES_FILE = "classes.json"


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


def generation_classes(params: dict[str, Any], count: int, seed: int) -> np.ndarray | None:
    """The classes (int32 indices) of ``count`` images of a conditional run of checkpoint ``params`` (the
    training set's class shares, :func:`mammogan_lib.data.conditioning.draw_classes`); ``None`` when it is
    unconditional."""
    conditioning = class_labels_from_params(params)
    return None if conditioning is None else draw_classes(count, conditioning[1], seed)


def run_generator(
    generator: Any, latents: np.ndarray, seed: int, batch_size: int = 64, classes: np.ndarray | None = None
) -> np.ndarray:
    """Images ``(N, R, R)`` float32 in [-1, 1] for ``latents`` (inference mode, noise seeded by ``seed``);
    a conditional generator needs ``classes`` (``(N,)`` int32), one per latent."""
    states = seed_states(generator)
    outputs = []
    for start in range(0, len(latents), batch_size):
        # the noise of batch k is keyed on (seed, k): independent of how many batches came before
        reseed(states, (seed, start))
        inputs = latents[start : start + batch_size]
        if classes is not None:
            inputs = [inputs, np.asarray(classes[start : start + batch_size], np.int32)]
        batch = generator(inputs, training=False)
        outputs.append(np.asarray(import_keras().ops.convert_to_numpy(batch), dtype=np.float32)[..., 0])
    return np.concatenate(outputs) if outputs else np.zeros((0, 0, 0), np.float32)


def write_pngs(images: np.ndarray, folder: Path | str) -> Path:
    """One 8-bit PNG per image in [-1, 1] (``0000.png`` ...) in ``folder``, replacing older ones."""
    import cv2

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for index, pixels in enumerate(to_uint8(images)):
        encoded, png = cv2.imencode(".png", pixels)
        if not encoded:
            raise OSError(f"could not encode {folder / f'{index:04d}.png'} as PNG")
        files.write_bytes(folder / f"{index:04d}.png", png.tobytes())
    return folder


def write_generated(
    images: np.ndarray,
    folder: Path,
    classes: np.ndarray | None = None,
    class_names: Sequence[str] = (),
) -> Path:
    """Write ``images.npy`` and one PNG per image into ``folder`` (replacing older ones); return it. With
    ``classes`` (indices into ``class_names``), the PNGs go into one subfolder per class and
    ``classes.json`` records each image's class."""
    folder = Path(folder)
    if classes is None:
        write_pngs(images, folder)
        (folder / CLASSES_FILE).unlink(missing_ok=True)
    else:
        for old in folder.glob("*.png"):
            old.unlink()
        for index, name in enumerate(class_names):
            write_pngs(images[np.asarray(classes) == index], folder / name)
        image_class = [class_names[int(index)] for index in classes]
        files.write_json(folder / CLASSES_FILE, {"classes": list(class_names), "image_class": image_class})
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


def load_generated_classes(run_dir: Path | str, epoch: int) -> list[str] | None:
    """Each generated image's class for ``epoch`` (a conditional run's), or ``None`` (unconditional)."""
    path = RunPaths(run_dir).generated / ckpt.checkpoint_name(epoch) / CLASSES_FILE
    return list(files.read_json(path)["image_class"]) if path.is_file() else None


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


# --- the reusable generator ---------------------------------------------------------------------------------


def export_generator(run_dir: Path | str, checkpoint_dir: Path | str) -> tuple[Path, Path]:
    """Write the checkpoint's generator as ``<run_dir>/export/generator.keras`` and its model card (without
    metrics until 05 adds them, or with those of an earlier 05 run of the same epoch); return both paths."""
    checkpoint_dir, paths = Path(checkpoint_dir), RunPaths(run_dir)
    generator = ckpt.load_generator(checkpoint_dir)
    files.write_atomically(paths.exported_generator, lambda tmp: generator.save(str(tmp)))
    card = cards.build_model_card(
        run_dir, ckpt.read_params(checkpoint_dir), ckpt.read_state(checkpoint_dir), checkpoint_dir.name
    )
    files.write_json(paths.model_card, card)
    cards.attach_metrics(run_dir)
    return paths.exported_generator, paths.model_card


def attach_card_metrics(run_dir: Path | str) -> Path | None:
    """05's metrics into the exported generator's model card (:func:`.model_card.attach_metrics`)."""
    return cards.attach_metrics(run_dir)


def load_exported_generator(model_file: Path | str) -> Any:
    """A generator exported by :func:`export_generator` (the project's layers registered, no training)."""
    import mammogan_lib.gan.models.layers  # noqa: F401  (registers the custom layers load_model needs)

    return import_keras().models.load_model(str(model_file), compile=False)


def check_class(wanted: str | None, card: dict[str, Any]) -> None:
    """``ValueError`` unless ``wanted`` is ``None``, one of a conditional generator's classes, or the one
    class an unconditional generator learned."""
    classes = card.get("classes", [])
    if wanted is not None and card.get("conditional"):
        if wanted not in classes:
            raise ValueError(
                f"--class {wanted}: unknown class; this generator's classes are {', '.join(classes)}"
            )
        return
    if wanted is not None and classes != [wanted]:
        learned = " and ".join(classes) if classes else "classes its model card does not name"
        raise ValueError(
            f"--class {wanted}: this generator is unconditional and was trained on {learned}; it cannot "
            "generate one class alone (train a run with conditional: true, or with abnormalities: ["
            + wanted
            + "], for that)"
        )


def generate_from_file(
    model_file: Path | str, count: int, out: Path | str, seed: int = 0, wanted_class: str | None = None
) -> Path:
    """Write ``count`` PNGs from an exported generator into ``out``: the latents of
    :func:`latent_vectors` and the noise of :func:`run_generator` for ``seed``."""
    card_path = Path(model_file).with_name(RunPaths(".").model_card.name)
    card = files.read_json(card_path) if card_path.is_file() else {}
    check_class(wanted_class, card)
    generator = load_exported_generator(model_file)
    conditional = len(generator.inputs) == 2
    if conditional and not card.get("conditional"):
        raise ValueError(f"{model_file} is a conditional generator but {card_path} does not list its classes")
    latents = latent_vectors(count, int(generator.inputs[0].shape[-1]), seed)
    classes = None
    if conditional:
        classes = generation_classes(card, count, seed)
        if wanted_class is not None:
            classes = np.full(count, card["classes"].index(wanted_class), np.int32)
    return write_pngs(run_generator(generator, latents, seed, classes=classes), out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mammogan_lib.gan.generate",
        description="Write synthetic mammograms (8-bit PNGs) from an exported mammogan generator (.keras). "
        "For research augmentation, not diagnosis: see the model_card.json beside the model.",
    )
    parser.add_argument("model", help="the exported generator.keras (its model_card.json beside it)")
    parser.add_argument("--count", type=int, required=True, help="images to write")
    parser.add_argument("--out", required=True, help="folder for 0000.png, 0001.png, ...")
    parser.add_argument(
        "--class",
        dest="wanted_class",
        help="a conditional generator's class (e.g. mass; default: its classes as trained); an unconditional "
        "generator accepts only the one class it learned",
    )
    parser.add_argument("--seed", type=int, default=0, help="same model and seed: same images (default 0)")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    try:
        folder = generate_from_file(args.model, args.count, args.out, args.seed, args.wanted_class)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.count} images to {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
