"""05_metrics: the Fréchet Radiomic Distance (FRD v1), a distribution distance that needs no network weights.

FRD (Konz, Osuala et al., "Fréchet Radiomic Distance (FRD): A Versatile Metric for Comparing Medical
Imaging Datasets", Medical Image Analysis 110:103943, 2026) fits Gaussians to ~400 radiomic features of each
image — first-order statistics and GLCM/GLRLM/GLSZM/NGTDM texture of the image and of its eight wavelet
bands, resampled to 2-pixel spacing, computed by PyRadiomics as the ``frd-score`` package configures it (its
configuration also asks for Laplacian-of-Gaussian images, which PyRadiomics skips on a single 2D slice) —
and reports the Fréchet distance between them. Being hand-crafted features, they judge intensity and texture
the way radiomics tools do, on any machine, with nothing to download.

Version 1, as ``frd-score`` computes it: every feature is z-scored with the mean and standard deviation of
the **first** set, features that are not finite in either set are dropped, and the result is log(d²). The
units therefore belong to the first set: two FRDs compare only when they share it. Here the real set always
comes first — the held-out patients' images for the generator *and* for the real floor. On the log scale a
gap of 1 between two FRDs means e ≈ 2.7 times the squared distance, a gap of 0.1 about 10 %.

Features are extracted once per image set, in worker processes, with ``frd-score``'s own per-image function
on the 8-bit PNG each image is written as (so the numbers are those of ``python -m frd_score`` on 04's PNGs),
and cached by the images' content; the distance is then computed here from the feature matrices, so one
extraction serves every comparison, the equal-N draws and the bootstrap. ``tests/test_radiomics.py`` checks
the distance against ``frd_score.compute_frd`` on the same images.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.core import files
from mammogan_lib.core.parallel import parallel_map
from mammogan_lib.data.imaging import to_uint8

FRD_VERSION = "v1"
PACKAGES = ("frd-score", "pyradiomics-bhklab")
MISSING_PACKAGES = (
    "FRD needs the packages frd-score and pyradiomics-bhklab (pinned in pyproject.toml): "
    "pip install -e . in the project's environment"
)


@dataclass(frozen=True)
class RadiomicFeatures:
    """The radiomic features of one image set: a row per image, a column per feature (NaN: none computed,
    e.g. a flat image's texture), and the images whose extraction failed, with why."""

    values: np.ndarray  # (N, F) float64
    names: tuple[str, ...]
    failures: tuple[tuple[int, str], ...] = ()  # (image index, error): their rows are NaN

    def __len__(self) -> int:
        return len(self.values)


def versions() -> dict[str, str]:
    """The installed versions behind the features (a cache key, and provenance)."""
    try:
        return {name: metadata.version(name) for name in PACKAGES}
    except metadata.PackageNotFoundError as error:
        raise RuntimeError(MISSING_PACKAGES) from error


def record() -> dict[str, Any]:
    """What ``metrics.json`` keeps about the features: no weights, the FRD version and the packages."""
    installed = versions()
    return {
        "pretrained": True,  # nothing to train: the numbers are comparable across runs and machines
        "source": f"radiomic features, FRD {FRD_VERSION} (frd-score {installed['frd-score']}, "
        f"pyradiomics-bhklab {installed['pyradiomics-bhklab']}); no network weights",
        "key_suffix": "",
        "frd_version": FRD_VERSION,
    }


_EXTRACTOR: Any = None


def _frd_module() -> Any:
    """``frd_score.frd``, imported without letting it change matplotlib's backend (it selects Agg on
    import, which would stop a notebook's figures from showing)."""
    import matplotlib

    backend = matplotlib.get_backend()
    try:
        from frd_score import frd
    except ImportError as error:
        raise RuntimeError(MISSING_PACKAGES) from error
    if matplotlib.get_backend() != backend:
        matplotlib.use(backend)
    return frd


def image_radiomics(png_path: str) -> tuple[tuple[str, ...], list[float], str]:
    """The FRD-v1 radiomic features of one image file, by ``frd-score``'s own per-image function (a whole-
    image mask, the 2D image as one slice) with its v1 extractor, built once per process: (names, values,
    ''), or ((), [], the error) where PyRadiomics failed on it (returned, not raised: see parallel.py)."""
    try:
        names, values = _radiomics_of(png_path)
    except Exception as error:  # noqa: BLE001 - whatever PyRadiomics raises, the image gets a NaN row
        return (), [], f"{type(error).__name__}: {error}"
    return names, values, ""


def feature_names() -> tuple[str, ...]:
    """The names of the FRD-v1 radiomic features, read off one textured image (seeded noise) in this
    process: what a set none of whose images had features is given as its columns (all NaN)."""
    import cv2

    texture = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="radiomics-") as folder:
        path = str(Path(folder) / "texture.png")
        cv2.imwrite(path, texture)
        names, _ = _radiomics_of(path)
    return names


def _radiomics_of(png_path: str) -> tuple[tuple[str, ...], list[float]]:
    global _EXTRACTOR
    frd = _frd_module()
    if _EXTRACTOR is None:
        import logging

        import radiomics

        # as frd-score itself does when not verbose: PyRadiomics would log a line per image and filter
        radiomics.setVerbosity(logging.CRITICAL + 10)
        logging.getLogger("radiomics").setLevel(logging.CRITICAL + 10)
        _EXTRACTOR = frd.get_feature_extractor(frd_version=FRD_VERSION, image_dim=2)
    result = frd.process_image_mask_pair(
        (png_path, None), feature_extractor=_EXTRACTOR, frd_version=FRD_VERSION
    )
    if result is None:
        raise RuntimeError(f"frd-score extracted no radiomic features from {png_path}")
    return tuple(result[1]), result[0]


def fingerprint(images: np.ndarray) -> str:
    """A SHA-256 of the 8-bit images and the packages' versions: the features' cache key."""
    digest = hashlib.sha256(str((FRD_VERSION, sorted(versions().items()))).encode())
    digest.update(str(images.shape).encode())
    digest.update(np.ascontiguousarray(to_uint8(images)).tobytes())
    return digest.hexdigest()


def radiomic_matrix(
    images: np.ndarray, workers: int, cache_dir: Path | None = None, progress: Callable | None = None
) -> np.ndarray:
    """:func:`extract_radiomic_features`' matrix alone, the form metrics' FRD functions take."""
    return extract_radiomic_features(images, workers, cache_dir, progress).values


def extract_radiomic_features(
    images: np.ndarray,
    workers: int,
    cache_dir: Path | None = None,
    progress: Callable[..., Iterable[Any]] | None = None,
) -> RadiomicFeatures:
    """The radiomic features of each (R, R) image in [-1, 1], each written as the 8-bit PNG 04 writes.

    ``workers`` processes share the images; with ``cache_dir`` the features are kept there under the
    images' :func:`fingerprint`, so a set measured again (the held-out images of every run and of every
    checkpoint) is read back. ``progress(iterable, total=n)`` may wrap the per-image loop.
    """
    import cv2

    cached = Path(cache_dir) / f"{fingerprint(images)}.npz" if cache_dir else None
    if cached is not None and cached.is_file():
        with np.load(cached) as stored:
            failed = zip(stored["failed"], stored["errors"], strict=True) if "failed" in stored.files else ()
            failures = tuple((int(index), str(error)) for index, error in failed)
            return RadiomicFeatures(stored["values"], tuple(str(n) for n in stored["names"]), failures)
    with tempfile.TemporaryDirectory(prefix="radiomics-") as folder:
        paths = []
        for index, image in enumerate(to_uint8(np.asarray(images))):
            path = Path(folder) / f"{index:06d}.png"
            if not cv2.imwrite(str(path), image):
                raise RuntimeError(f"could not write {path} for radiomic features")
            paths.append(str(path))
        results: Iterable[tuple[tuple[str, ...], list[float], str]] = parallel_map(
            image_radiomics, paths, workers, chunksize=8
        )
        if progress is not None:
            results = progress(results, total=len(paths))
        results = list(results)
    names = next((result[0] for result in results if not result[2]), ())
    if results and not names:  # no image had features (e.g. all flat): their NaN rows still need columns
        names = feature_names()
    if any(result[0] != names for result in results if not result[2]):
        raise RuntimeError("frd-score returned different radiomic feature names for images of one set")
    failures = tuple((index, result[2]) for index, result in enumerate(results) if result[2])
    values = np.array(
        [result[1] if not result[2] else [np.nan] * len(names) for result in results], dtype=np.float64
    ).reshape(len(results), len(names))
    features = RadiomicFeatures(values, names, failures)
    if cached is not None:
        files.write_atomically(
            cached,
            lambda tmp: np.savez(
                tmp,
                values=features.values,
                names=np.array(names),
                failed=np.array([index for index, _ in failures], dtype=int),
                errors=np.array([error for _, error in failures], dtype=str),
            ),
        )
    return features
