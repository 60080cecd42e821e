"""A deterministic mammography phantom in the exact layout of the Kaggle copy of CBIS-DDSM.

:func:`write_phantom` writes, from a seed and in seconds, a synthetic dataset (no patient data) laid out like
``/kaggle/input/cbis-ddsm-breast-cancer-image-dataset/``::

    csv/dicom_info.csv, csv/meta.csv, csv/{mass,calc}_case_description_{train,test}_set.csv
    jpeg/<SeriesInstanceUID>/1-NNN.jpg          full mammograms, lesion crops and ROI masks (one series each)
    healthy/labels.csv + healthy/images/*.png    healthy images, same acquisition style (8-bit)
    healthy_other_source/labels.csv + images/    healthy images from a different "scanner" (16-bit, digital)
    phantom_truth.csv                            ground truth per finding (not part of the Kaggle layout)
    README.txt                                   what this is, the seed and the spec

The quirks of the real data are reproduced on purpose so that loaders, filters and cleaners have real work:
paths ending in a newline, crop and ROI mask told apart only by ``dicom_info.csv`` (their ``000000``/
``000001`` numbers are random), ~5 % of full images without SeriesDescription, several findings per image,
images listed in both the mass and the calcification CSVs, ``breast_density`` versus ``breast density``.

Images (:func:`render_mammogram`) are built from a simple attenuation model: a compressed-breast thickness
profile inside a smooth contour attached to the chest wall, a skin line and subcutaneous fat layer,
fibroglandular tissue from filtered noise with a 1/f^beta power spectrum (beta = 3, the published value for
mammographic anatomical noise) plus strands radiating from the nipple, a pectoral muscle on MLO views, and
lesions (spiculated/irregular or circumscribed masses, pleomorphic or coarse calcifications). A film
characteristic curve maps attenuation to grey levels; burned-in labels, bright scanner borders, grain and
vignetting are added like on digitised film. Geometry is built with the chest wall on the left (a LEFT
breast, as in CBIS-DDSM) and mirrored for RIGHT breasts.

Every random choice comes from ``np.random.default_rng`` generators derived from ``PhantomSpec.seed``: the
same spec gives byte-identical CSVs and identical pixels, whatever the number of worker processes.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mammogan_lib.parallel import parallel_map

# ------------------------------------------------------------------------------------------------------------
# Vocabulary and CSV columns
# ------------------------------------------------------------------------------------------------------------

DICOM_INFO_COLUMNS: tuple[str, ...] = (
    "file_path", "image_path", "AccessionNumber", "BitsAllocated", "BitsStored", "BodyPartExamined",
    "Columns",
    "ContentDate", "ContentTime", "ConversionType", "HighBit", "InstanceNumber", "LargestImagePixelValue",
    "Laterality", "Modality", "PatientBirthDate", "PatientID", "PatientName", "PatientOrientation",
    "PatientSex", "PhotometricInterpretation", "PixelRepresentation", "ReferringPhysicianName", "Rows",
    "SOPClassUID", "SOPInstanceUID", "SamplesPerPixel", "SeriesDescription", "SeriesInstanceUID",
    "SmallestImagePixelValue", "StudyDate", "StudyID", "StudyInstanceUID", "StudyTime",
)  # fmt: skip
META_COLUMNS: tuple[str, ...] = (
    "SeriesInstanceUID", "StudyInstanceUID", "Modality", "SeriesDescription", "BodyPartExamined",
    "SeriesNumber", "Collection", "Visibility", "ImageCount",
)  # fmt: skip
_PATH_COLUMNS = ("image file path", "cropped image file path", "ROI mask file path")
MASS_COLUMNS: tuple[str, ...] = (
    "patient_id", "breast_density", "left or right breast", "image view", "abnormality id",
    "abnormality type",
    "mass shape", "mass margins", "assessment", "pathology", "subtlety", *_PATH_COLUMNS,
)  # fmt: skip
CALC_COLUMNS: tuple[str, ...] = (
    "patient_id", "breast density", "left or right breast", "image view", "abnormality id",
    "abnormality type",
    "calc type", "calc distribution", "assessment", "pathology", "subtlety", *_PATH_COLUMNS,
)  # fmt: skip
HEALTHY_COLUMNS: tuple[str, ...] = ("file", "pathology", "abnormality", "laterality", "view")
TRUTH_COLUMNS: tuple[str, ...] = (
    "SeriesInstanceUID", "image_path", "abnormality_type", "pathology", "subtype", "extent", "abnormality_id",
    "center_x", "center_y", "radius", "roi_series_uid", "crop_series_uid", "cut_contour", "view",
    "laterality", "breast_density", "width", "height", "pectoral_width", "pectoral_height", "pectoral_bow",
    "style",
)  # fmt: skip

FULL_DESCRIPTION = "full mammogram images"
CROP_DESCRIPTION = "cropped images"
MASK_DESCRIPTION = "ROI mask images"
UID_ROOT = "1.3.6.1.4.1.9590.100.1.2."
SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.7"
JPEG_QUALITY = 92
STYLES: tuple[str, ...] = ("film", "digital")
VIEWS: tuple[str, ...] = ("CC", "MLO")
LATERALITIES: tuple[str, ...] = ("LEFT", "RIGHT")
PATHOLOGIES: tuple[str, ...] = ("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK")
README_MARKER = "mammogan synthetic mammography phantom"

# (value, weight) tables for the finding descriptors, by abnormality and malignancy.
_MASS_SHAPES = {
    True: (("IRREGULAR", 6), ("LOBULATED", 1.5), ("ARCHITECTURAL_DISTORTION", 1), ("OVAL", 1)),
    False: (("OVAL", 4), ("ROUND", 3), ("LOBULATED", 3)),
}
_MASS_MARGINS = {
    True: (("SPICULATED", 5), ("ILL_DEFINED", 3.5), ("MICROLOBULATED", 1), ("OBSCURED", 0.5)),
    False: (("CIRCUMSCRIBED", 6), ("OBSCURED", 2.5), ("ILL_DEFINED", 1.5)),
}
_CALC_TYPES = {
    True: (("PLEOMORPHIC", 6), ("FINE_LINEAR_BRANCHING", 2.5), ("AMORPHOUS", 1), ("PUNCTATE", 0.5)),
    False: (("COARSE", 2.5), ("LUCENT_CENTER", 2.5), ("ROUND_AND_REGULAR", 2.5), ("PUNCTATE", 1.5)),
}
_CALC_DISTRIBUTIONS = {
    True: (("CLUSTERED", 6), ("SEGMENTAL", 1.5), ("LINEAR", 1.5), ("REGIONAL", 1)),
    False: (("CLUSTERED", 5), ("REGIONAL", 3), ("SEGMENTAL", 1), ("LINEAR", 1)),
}


# ------------------------------------------------------------------------------------------------------------
# Public data classes
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhantomSpec:
    """What to generate. ``n_images`` full mammograms in the Kaggle layout plus the two healthy sets."""

    n_images: int = 300  # full mammograms in the Kaggle layout
    height: int = 1024  # pixel rows of a full mammogram (width ~ 0.55-0.65 x height)
    seed: int = 0
    malignant_fraction: float = 0.5  # share of full images with >= 1 MALIGNANT finding
    cut_contour_fraction: float = 0.3  # share of images whose breast contour is cut by the image edge
    n_healthy: int = 100  # healthy images, same acquisition style, in healthy/
    n_healthy_other_source: int = 100  # healthy images from a visibly different "scanner"

    def __post_init__(self) -> None:
        _check_int("n_images", self.n_images, 1, 100_000)
        _check_int("height", self.height, 128, 8192)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        _check_fraction("malignant_fraction", self.malignant_fraction)
        _check_fraction("cut_contour_fraction", self.cut_contour_fraction)
        _check_int("n_healthy", self.n_healthy, 0, 100_000)
        _check_int("n_healthy_other_source", self.n_healthy_other_source, 0, 100_000)

    def as_dict(self) -> dict[str, int | float]:
        """The spec as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class FindingSpec:
    """One lesion to draw: its type, pathology and the CBIS-DDSM descriptors that shape it."""

    abnormality: str  # 'mass' | 'calcification'
    pathology: str  # MALIGNANT | BENIGN | BENIGN_WITHOUT_CALLBACK
    subtype: str = ""  # mass shape or calc type
    extent: str = ""  # mass margins or calc distribution
    subtlety: int = 3  # 1 (subtle) .. 5 (obvious)

    @property
    def malignant(self) -> bool:
        return self.pathology == "MALIGNANT"


@dataclass(frozen=True)
class PhantomSummary:
    """What :func:`write_phantom` wrote."""

    root: Path
    spec: PhantomSpec
    n_full_images: int
    n_patients: int
    n_train_patients: int
    n_test_patients: int
    n_findings: int
    n_mass_findings: int
    n_calc_findings: int
    n_malignant_images: int
    n_multi_finding_images: int
    n_mass_and_calc_images: int
    n_cut_contour: int
    n_crops: int
    n_masks: int
    n_healthy: int
    n_healthy_other_source: int
    n_files: int
    seconds: float


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"PhantomSpec.{name}: expected an int in [{low}, {high}], got {value!r}")


def _check_fraction(name: str, value: object) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= float(value) <= 1.0
    if not ok:
        raise ValueError(f"PhantomSpec.{name}: expected a number in [0, 1], got {value!r}")


# ------------------------------------------------------------------------------------------------------------
# Texture: 1/f^beta noise
# ------------------------------------------------------------------------------------------------------------


def power_law_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    beta: float = 3.0,
    stretch: float = 1.0,
    low_cut: float = 2.0,
) -> np.ndarray:
    """Zero-mean, unit-variance float32 Gaussian noise whose power spectrum falls as 1/f^beta.

    ``stretch`` > 1 makes the field anisotropic (structures elongated along axis 1). Frequencies below
    ``low_cut`` cycles per field are held flat so that one giant blob does not dominate the field.
    """
    rows, cols = shape
    fy = np.fft.fftfreq(rows).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(cols).astype(np.float32)[None, :] * np.float32(stretch)
    f = np.sqrt(fx * fx + fy * fy)
    f = np.maximum(f, np.float32(low_cut / max(rows, cols)))
    amplitude = f ** np.float32(-beta / 2.0)
    amplitude[0, 0] = 0.0
    white = rng.standard_normal((rows, cols), dtype=np.float32)
    field = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(rows, cols)).astype(np.float32)
    field -= field.mean()
    return field / max(float(field.std()), 1e-12)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30, 30)))


# ------------------------------------------------------------------------------------------------------------
# Breast geometry (chest wall on the left: a LEFT breast; RIGHT is mirrored at the end)
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Geometry:
    height: int
    width: int
    contour: np.ndarray  # (N, 2) float32 x, y of the skin line, chest wall to chest wall, may leave the image
    nipple: tuple[float, float]
    centre_y: float  # middle of the breast along the chest wall
    depth: float  # chest wall to nipple, pixels
    pectoral: tuple[float, float, float]  # width at the top row, height on the chest wall, bow (0,0,1: none)
    cut_side: str  # '' | 'top' | 'bottom' | 'vertical' | 'far'


def _cc_shape(rng: np.random.Generator, h: int, w: int, cut: str) -> dict[str, float]:
    """Contour parameters of a CC view (half-heights along the chest wall, depth, bulge, nipple drop)."""
    yc = h * rng.uniform(0.46, 0.54)
    room_up, room_down = yc - 0.035 * h, 0.965 * h - yc
    p = {"yc": yc, "b_up": room_up * rng.uniform(0.72, 1.0), "b_down": room_down * rng.uniform(0.72, 1.0),
         "a": w * rng.uniform(0.42, 0.72), "p_up": rng.uniform(0.8, 1.3), "p_down": rng.uniform(0.8, 1.3),
         "m_up": rng.uniform(0.0, 0.15), "drop": h * rng.uniform(-0.04, 0.04)}  # fmt: skip
    if cut in ("top", "vertical"):
        p["b_up"] = yc + h * rng.uniform(0.08, 0.3)
    if cut in ("bottom", "vertical"):
        p["b_down"] = h - yc + h * rng.uniform(0.08, 0.3)
    if cut == "far":
        p["a"] = w * rng.uniform(1.08, 1.35)
    return p


def _mlo_shape(rng: np.random.Generator, h: int, w: int, cut: str) -> dict[str, float]:
    """Contour parameters of an MLO view: straight axillary upper border, round lower bulge, nipple lower."""
    top = h * rng.uniform(0.025, 0.07)
    bottom = h * rng.uniform(0.8, 0.965)
    if cut in ("top", "vertical"):
        top = -h * rng.uniform(0.1, 0.35)
    if cut in ("bottom", "vertical"):
        bottom = h * rng.uniform(1.08, 1.3)
    yc = (top + bottom) / 2
    half = (bottom - top) / 2
    p = {
        "yc": yc,
        "b_up": half,
        "b_down": half,
        "a": w * rng.uniform(0.5, 0.78),
        "p_up": rng.uniform(0.7, 1.0),
        "p_down": rng.uniform(0.45, 0.75),
        "m_up": rng.uniform(0.45, 0.75),
        "drop": h * rng.uniform(0.05, 0.16),
    }
    if cut == "far":
        p["a"] = w * rng.uniform(1.08, 1.3)
    return p  # fmt: skip


def _contour_points(rng: np.random.Generator, p: dict[str, float], n: int = 240) -> np.ndarray:
    """The skin line from the chest wall (top) round the nipple back to the chest wall (bottom)."""
    theta = np.linspace(-np.pi / 2, np.pi / 2, n, dtype=np.float64)
    s, c = np.sin(theta), np.clip(np.cos(theta), 0.0, 1.0)
    upper = theta < 0
    straight = p["m_up"] * (1.0 - np.exp(-((theta / 0.45) ** 2)))  # fades out at the nipple: no kink
    x_up = p["a"] * ((1 - straight) * c ** p["p_up"] + straight * (1 + s))
    x = np.where(upper, x_up, p["a"] * c ** p["p_down"])
    wobble = np.ones_like(theta)
    for k in range(2, 6):
        wobble += rng.uniform(0, 0.018) * np.sin(k * theta + rng.uniform(0, 2 * np.pi))
    x = x * wobble + p["a"] * 0.012 * np.exp(-((theta / 0.1) ** 2))  # nipple
    y = p["yc"] + np.where(upper, p["b_up"], p["b_down"]) * s + p["drop"] * (x / p["a"]) ** 1.5
    return np.stack([x, y], axis=1).astype(np.float32)


def _fit_inside(contour: np.ndarray, yc: float, h: int, w: int, margin: float = 0.035) -> np.ndarray:
    """Squeeze a contour toward the chest-wall centre ``yc`` so that it stays ``margin`` inside the image."""
    x, y = contour[:, 0].copy(), contour[:, 1].copy()
    low, high = margin * h, (1 - margin) * h
    below, above = y > yc, y < yc
    if y.max() > high:
        y[below] = yc + (y[below] - yc) * (high - yc) / (y.max() - yc)
    if y.min() < low:
        y[above] = yc - (yc - y[above]) * (yc - low) / (yc - y.min())
    if x.max() > (1 - 2 * margin) * w:
        x *= (1 - 2 * margin) * w / x.max()
    return np.stack([x, y], axis=1).astype(np.float32)


def _breast_geometry(rng: np.random.Generator, h: int, w: int, view: str, cut: str) -> _Geometry:
    """Contour, nipple and pectoral muscle of one breast (chest wall on the left)."""
    p = _mlo_shape(rng, h, w, cut) if view == "MLO" else _cc_shape(rng, h, w, cut)
    contour = _contour_points(rng, p)
    if not cut:
        contour = _fit_inside(contour, p["yc"], h, w)
    nipple_index = int(np.argmax(contour[:, 0]))
    nipple = (float(contour[nipple_index, 0]), float(contour[nipple_index, 1]))
    pectoral = (0.0, 0.0, 1.0)
    if view == "MLO":
        top = max(float(contour[:, 1].min()), 0.0)
        pectoral = _fit_pectoral(contour, w * rng.uniform(0.28, 0.45), top + h * rng.uniform(0.3, 0.45),
                                 rng.uniform(0.55, 0.85))  # fmt: skip
    return _Geometry(h, w, contour, nipple, p["yc"], p["a"], pectoral, cut)


def _fit_pectoral(contour: np.ndarray, width: float, height: float, bow: float) -> tuple[float, float, float]:
    """Narrow the pectoral triangle so that below the axillary tip it covers at most 65 % of the breast width."""
    upper = contour[: int(np.argmax(contour[:, 0])) + 1]
    order = np.argsort(upper[:, 1])
    top = max(float(upper[:, 1].min()), 0.0)
    ys = np.linspace(top + 0.3 * (height - top), height, 48, endpoint=False)
    breast = np.interp(ys, upper[order, 1], upper[order, 0], left=0.0)
    edge = width * np.clip(1.0 - ys / height, 0.0, 1.0) ** bow
    ratio = float(np.max(edge / np.maximum(breast, 1.0)))
    return (width * min(1.0, 0.65 / ratio), height, bow)


def _breast_mask(geom: _Geometry) -> np.ndarray:
    """Float32 breast mask in [0, 1] with an anti-aliased skin edge."""
    h, w = geom.height, geom.width
    wall = np.array([[-50.0, geom.contour[-1, 1]], [-50.0, geom.contour[0, 1]]], dtype=np.float32)
    polygon = np.concatenate([geom.contour, wall])
    shift = 4
    points = np.round(polygon * (1 << shift)).astype(np.int32)
    canvas = np.zeros((h, w), np.uint8)
    cv2.fillPoly(canvas, [points], 255, lineType=cv2.LINE_AA, shift=shift)
    return canvas.astype(np.float32) / 255.0


def _pectoral_mask(geom: _Geometry, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Soft pectoral muscle: x < width * (1 - y/height)^bow, in the upper chest-wall corner (MLO only)."""
    pw, ph, bow = geom.pectoral
    if pw <= 0:
        return np.zeros((ys.shape[0], xs.shape[1]), np.float32)
    t = np.clip(1.0 - ys / ph, 0.0, 1.0) ** bow
    edge = pw * t
    soft = max(1.5, 3.0 * geom.height / 1024)
    return _sigmoid((edge - xs) / soft).astype(np.float32) * (ys < ph)


# ------------------------------------------------------------------------------------------------------------
# Anatomy: thickness, fibroglandular tissue, skin, muscle -> attenuation map
# ------------------------------------------------------------------------------------------------------------

_DENSITY_BIAS = {1: -1.5, 2: -0.7, 3: 0.0, 4: 0.7}


def _strand_field(rng: np.random.Generator, geom: _Geometry, shape: tuple[int, int]) -> np.ndarray:
    """Fibrous strands running toward the nipple: noise elongated along x, rows converging on the nipple."""
    rows, cols = shape
    scale = geom.width / cols
    noise = power_law_noise(rng, (rows, cols), beta=2.8, stretch=3.0)
    ys, xs = np.mgrid[0:rows, 0:cols].astype(np.float32)
    nx, ny = geom.nipple[0] / scale, geom.nipple[1] / scale
    taper = 1.0 - 0.65 * np.clip(xs / max(nx, 1.0), 0.0, 1.0) ** 1.5
    map_v = (ny + (ys - ny) / taper).astype(np.float32)
    return cv2.remap(noise, xs, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)


def _ligament_network(rng: np.random.Generator, shape: tuple[int, int], cell: float) -> np.ndarray:
    """Thin curvilinear bright lines (Cooper's ligaments, fat-lobule walls): zero crossings of noise."""
    rows, cols = shape
    white = rng.standard_normal((rows, cols), dtype=np.float32)
    field = cv2.GaussianBlur(white, (0, 0), cell, borderType=cv2.BORDER_REFLECT)
    field /= max(float(field.std()), 1e-12)
    return np.exp(-((field / 0.07) ** 2)).astype(np.float32)


def _tissue_noise(rng: np.random.Generator, geom: _Geometry, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Anatomical noise (isotropic 1/f^3 plus strands) and the ligament network, computed at 1/factor size."""
    rows, cols = -(-geom.height // factor), -(-geom.width // factor)
    iso = power_law_noise(rng, (rows, cols), beta=3.0)
    strands = _strand_field(rng, geom, (rows, cols))
    mix = (0.8 * iso + 0.55 * strands).astype(np.float32)
    network = _ligament_network(rng, (rows, cols), cell=6.0 * geom.height / 1024 * 2 / factor)
    size = (geom.width, geom.height)
    return cv2.resize(mix, size, interpolation=cv2.INTER_CUBIC), cv2.resize(
        network, size, interpolation=cv2.INTER_LINEAR
    )


def _gland_envelope(
    geom: _Geometry, dist: np.ndarray, xs: np.ndarray, ys: np.ndarray, fat: float
) -> np.ndarray:
    """Where fibroglandular tissue may be: none in the subcutaneous fat layer, more toward the chest wall."""
    depth = np.clip(xs / max(geom.depth, 1.0), 0.0, 1.2)
    radial = 1.0 - 0.55 * depth**2
    vertical = 0.55 + 0.45 * np.exp(-(((ys - geom.nipple[1]) / (0.45 * geom.height)) ** 2))
    return _smoothstep(dist / fat) * radial * vertical


@dataclass
class _Anatomy:
    attenuation: np.ndarray  # float32 HxW
    mask: np.ndarray  # float32 breast mask [0, 1]
    dist: np.ndarray  # distance to the skin line, pixels (0 outside)
    pectoral: np.ndarray  # float32 [0, 1]


def _anatomy(rng: np.random.Generator, geom: _Geometry, density: int) -> _Anatomy:
    """Attenuation of the breast without lesions: thickness x (fat + gland + ligaments), skin, pectoral."""
    h, w = geom.height, geom.width
    mask = _breast_mask(geom)
    dist = cv2.distanceTransform((mask > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    falloff = geom.depth * rng.uniform(0.16, 0.28)
    thickness = np.sqrt(1.0 - (1.0 - np.clip(dist / falloff, 0.0, 1.0)) ** 2) * mask
    envelope = _gland_envelope(geom, dist, xs, ys, w * rng.uniform(0.035, 0.07))
    noise, network = _tissue_noise(rng, geom, factor=2 if h >= 512 else 1)
    gland = envelope * _sigmoid(1.5 * (noise + _DENSITY_BIAS[density] + rng.normal(0, 0.15)))
    ligaments = network * _smoothstep(dist / (0.02 * w)) * (1.0 - gland)
    pectoral = _pectoral_mask(geom, xs, ys) * mask
    muscle = 1.05 + 0.4 * _pectoral_depth(geom, xs, ys) + 0.1 * noise + 0.1 * gland
    skin = 0.14 * np.exp(-((dist / max(1.0, 1.3 * h / 1024)) ** 2)) * mask
    tissue = 0.42 + 0.95 * gland + 0.07 * ligaments
    slab = np.sqrt(1.0 - (1.0 - np.clip(dist / (0.3 * falloff), 0.0, 1.0)) ** 2) * mask  # the muscle is thick
    attenuation = thickness * tissue * (1.0 - pectoral) + slab * muscle * pectoral + skin
    return _Anatomy(attenuation.astype(np.float32), mask, dist, pectoral)


def _pectoral_depth(geom: _Geometry, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """0 at the pectoral's edge, rising toward the chest wall (the muscle is thicker there)."""
    pw, ph, bow = geom.pectoral
    if pw <= 0:
        return np.zeros_like(xs)
    edge = pw * np.clip(1.0 - ys / ph, 1e-3, 1.0) ** bow
    return np.sqrt(np.clip(1.0 - xs / edge, 0.0, 1.0))


# ------------------------------------------------------------------------------------------------------------
# Lesions, drawn in a local patch and added to the attenuation map
# ------------------------------------------------------------------------------------------------------------


def _lumpy_polygon(rng: np.random.Generator, centre: float, radius: float, roughness: float) -> np.ndarray:
    """A closed outline r(theta) = radius * (1 + random harmonics) around (centre, centre)."""
    theta = np.linspace(0, 2 * np.pi, 96, endpoint=False)
    r = np.ones_like(theta)
    for k in range(2, 8):
        r += rng.uniform(0, roughness / np.sqrt(k)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    r = radius * np.clip(r, 0.45, 1.8)
    return np.stack([centre + r * np.cos(theta), centre + r * np.sin(theta)], axis=1)


def _fill(size: int, polygon: np.ndarray) -> np.ndarray:
    canvas = np.zeros((size, size), np.uint8)
    cv2.fillPoly(canvas, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0


def _spicules(rng: np.random.Generator, size: int, radius: float, count: int, reach: float) -> np.ndarray:
    """Thin, tapering, nearly straight lines of varied length radiating from the core."""
    canvas = np.zeros((size, size), np.float32)
    c = size / 2
    base = max(1, int(round(radius * 0.06)))
    for angle in rng.uniform(0, 2 * np.pi, count):
        length = radius * rng.uniform(1.2, reach)
        bend = rng.normal(0, 0.12)
        steps = 5
        for i in range(steps):
            r0, r1 = radius * 0.6 + (length - radius * 0.6) * np.array([i, i + 1]) / steps
            a0, a1 = angle + bend * (i / steps) ** 2, angle + bend * ((i + 1) / steps) ** 2
            p0 = (int(round((c + r0 * np.cos(a0)) * 16)), int(round((c + r0 * np.sin(a0)) * 16)))
            p1 = (int(round((c + r1 * np.cos(a1)) * 16)), int(round((c + r1 * np.sin(a1)) * 16)))
            thick = base if i < 2 else 1
            cv2.line(canvas, p0, p1, float(0.9 - 0.75 * i / steps), thick, cv2.LINE_AA, shift=4)
    return canvas


def _mass_patch(
    rng: np.random.Generator, finding: FindingSpec, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """Attenuation patch and ROI mask of a mass: malignant irregular/spiculated, benign circumscribed."""
    size = int(np.ceil(radius * 7)) | 1
    c = size / 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    rho = np.sqrt((xs - c) ** 2 + (ys - c) ** 2) / radius
    if finding.malignant:
        core_radius = radius * (0.6 if finding.subtype == "ARCHITECTURAL_DISTORTION" else 1.0)
        core = _fill(size, _lumpy_polygon(rng, c, core_radius, 0.55))
        soft = cv2.GaussianBlur(
            core, (0, 0), max(0.8, radius * (0.12 if finding.extent == "SPICULATED" else 0.2))
        )
        count = int(rng.integers(14, 36)) if finding.extent == "SPICULATED" else int(rng.integers(3, 10))
        spic = cv2.GaussianBlur(_spicules(rng, size, core_radius, count, 3.3), (0, 0), 0.7)
        halo = cv2.GaussianBlur(core, (0, 0), radius * 0.5)
        patch = soft * (0.7 + 0.35 * np.sqrt(np.clip(1 - rho**2, 0, 1))) + 0.25 * halo + 0.35 * spic
        roi = core > 0.5
    else:
        rough = 0.25 if finding.subtype == "LOBULATED" else 0.04
        aspect = 1.0 if finding.subtype == "ROUND" else rng.uniform(0.6, 0.85)
        outline = _lumpy_polygon(rng, c, radius, rough)
        angle = rng.uniform(0, np.pi)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        outline = (outline - c) * np.array([1.0, aspect]) @ rot.T + c
        body = _fill(size, outline)
        edge = 0.6 if finding.extent == "CIRCUMSCRIBED" else radius * 0.12
        patch = cv2.GaussianBlur(body, (0, 0), max(0.6, edge)) * (
            0.8 + 0.2 * np.sqrt(np.clip(1 - rho**2, 0, 1))
        )
        roi = body > 0.5
    return patch.astype(np.float32), roi


def _calc_positions(rng: np.random.Generator, finding: FindingSpec, n: int, spread: float) -> np.ndarray:
    """Speck centres (relative to the cluster centre): a blob, or elongated for linear/segmental spread."""
    points = rng.normal(0, spread / 2.2, (n, 2))
    if finding.extent in ("LINEAR", "SEGMENTAL"):
        angle = rng.uniform(0, np.pi)
        points = points * np.array([1.6, 0.35])
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        points = points @ rot.T
    return np.clip(points, -spread * 1.5, spread * 1.5)


def _calc_patch(rng: np.random.Generator, finding: FindingSpec, spread: float, scale: float):
    """Attenuation patch and ROI mask of a calcification cluster (malignant fine, benign coarse)."""
    size = int(np.ceil(spread * 4 + 24 * scale)) | 1
    c = size / 2
    canvas = np.zeros((size, size), np.float32)
    n = int(rng.integers(5, 31)) if finding.malignant else int(rng.integers(2, 8))
    centres = _calc_positions(rng, finding, n, spread) + c
    for x, y in centres:
        if finding.malignant:
            _draw_fine_speck(rng, canvas, x, y, scale, finding.subtype == "FINE_LINEAR_BRANCHING")
        else:
            _draw_coarse_speck(rng, canvas, x, y, scale, finding.subtype == "LUCENT_CENTER")
    patch = cv2.GaussianBlur(canvas, (0, 0), 0.5)
    hull = cv2.convexHull(np.round(centres * 16).astype(np.int32))
    roi = np.zeros((size, size), np.uint8)
    cv2.fillPoly(roi, [hull], 255, cv2.LINE_8, shift=4)
    margin = int(round(max(2.0, 5 * scale) * (1 if finding.malignant else 2.5)))
    roi = cv2.dilate(roi, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))
    return patch, roi > 0


def _draw_fine_speck(
    rng: np.random.Generator, canvas: np.ndarray, x: float, y: float, scale: float, linear: bool
):
    """A tiny (1-3 px at 1024 rows) irregular bright speck, or a short branching line."""
    value = float(rng.uniform(1.6, 2.6))
    size = max(0.6, rng.uniform(0.5, 1.5) * scale)
    if linear:
        angle = rng.uniform(0, 2 * np.pi)
        length = rng.uniform(2, 6) * scale
        p0 = (int(round(x * 16)), int(round(y * 16)))
        p1 = (int(round((x + length * np.cos(angle)) * 16)), int(round((y + length * np.sin(angle)) * 16)))
        cv2.line(canvas, p0, p1, value, max(1, int(round(size))), cv2.LINE_AA, shift=4)
        return
    k = int(rng.integers(3, 6))
    angles = np.sort(rng.uniform(0, 2 * np.pi, k))
    radii = size * rng.uniform(0.6, 1.4, k)
    poly = np.stack([x + radii * np.cos(angles), y + radii * np.sin(angles)], axis=1)
    cv2.fillPoly(canvas, [np.round(poly * 16).astype(np.int32)], value, cv2.LINE_AA, shift=4)
    cv2.circle(
        canvas, (int(round(x * 16)), int(round(y * 16))), int(round(size * 8)), value, -1, cv2.LINE_AA, 4
    )


def _draw_coarse_speck(
    rng: np.random.Generator, canvas: np.ndarray, x: float, y: float, scale: float, lucent: bool
):
    """A larger (4-12 px at 1024 rows) round, bright speck; a ring when lucent-centred."""
    radius = rng.uniform(2.0, 6.0) * scale
    value = float(rng.uniform(1.4, 2.2))
    centre = (int(round(x * 16)), int(round(y * 16)))
    cv2.circle(canvas, centre, max(8, int(round(radius * 16))), value, -1, cv2.LINE_AA, 4)
    if lucent and radius > 1.5:
        cv2.circle(canvas, centre, int(round(radius * 0.55 * 16)), value * 0.35, -1, cv2.LINE_AA, 4)


def _lesion_size(rng: np.random.Generator, finding: FindingSpec, scale: float) -> float:
    if finding.abnormality == "mass":
        return float(rng.uniform(22, 50) if finding.malignant else rng.uniform(16, 40)) * scale
    return float(rng.uniform(8, 22) if finding.malignant else rng.uniform(14, 34)) * scale


def _pick_centre(
    rng: np.random.Generator,
    anatomy: _Anatomy,
    geom: _Geometry,
    reach: float,
    taken: list[tuple[float, float, float]],
) -> tuple[int, int]:
    """A lesion centre inside the breast, off the pectoral muscle and away from other lesions."""
    step = max(2, geom.height // 256)
    dist = anatomy.dist[::step, ::step]
    pect = anatomy.pectoral[::step, ::step]
    xs = np.arange(dist.shape[1]) * step
    for margin in (reach + 0.03 * geom.width, reach * 0.5, 2.0):
        ok = (dist > margin) & (pect < 0.05) & (xs[None, :] < 0.92 * geom.depth)
        candidates = np.flatnonzero(ok)
        rng.shuffle(candidates)
        for index in candidates[:400]:
            y, x = divmod(int(index), dist.shape[1])
            x, y = x * step, y * step
            if all((x - tx) ** 2 + (y - ty) ** 2 > (reach + tr) ** 2 for tx, ty, tr in taken):
                return x, y
    return int(0.3 * geom.depth), int(geom.nipple[1])


def _paste(target: np.ndarray, patch: np.ndarray, x: int, y: int, mode: str = "add") -> None:
    """Add (or OR) a centred ``patch`` into ``target`` at (x, y), clipped to the image."""
    size = patch.shape[0]
    top, left = y - size // 2, x - size // 2
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + size, target.shape[0]), min(left + size, target.shape[1])
    if t1 <= t0 or l1 <= l0:
        return
    piece = patch[t0 - top : t1 - top, l0 - left : l1 - left]
    if mode == "or":
        target[t0:t1, l0:l1] |= piece
    else:
        target[t0:t1, l0:l1] += piece


def _add_findings(
    rng: np.random.Generator, anatomy: _Anatomy, geom: _Geometry, findings: Sequence[FindingSpec]
) -> list[np.ndarray]:
    """Draw each finding into the attenuation map; return one full-size bool ROI mask per finding."""
    scale = geom.height / 1024
    masks, taken = [], []
    for finding in findings:
        size = _lesion_size(rng, finding, scale)
        if finding.abnormality == "mass":
            patch, roi = _mass_patch(rng, finding, size)
            reach = size * (2.2 if finding.malignant else 1.2)
            contrast = (0.32 if finding.malignant else 0.26) + 0.05 * finding.subtlety
        else:
            patch, roi = _calc_patch(rng, finding, size, scale)
            reach, contrast = size * 1.6, 1.0
        x, y = _pick_centre(rng, anatomy, geom, reach, taken)
        taken.append((x, y, reach))
        _paste(
            anatomy.attenuation,
            patch * np.float32(contrast) * np.clip(anatomy.mask[y, x] + 0.0, 0.5, 1.0),
            x,
            y,
        )
        mask = np.zeros((geom.height, geom.width), bool)
        _paste(mask, roi, x, y, mode="or")
        masks.append(mask & (anatomy.mask > 0.5))
    return masks


# ------------------------------------------------------------------------------------------------------------
# Acquisition: tone curve, film artefacts, labels
# ------------------------------------------------------------------------------------------------------------


def _tone(rng: np.random.Generator, attenuation: np.ndarray, style: str) -> np.ndarray:
    """Attenuation -> display value in [0, 1] (film: H&D-like curve over a film base; digital: log-like)."""
    if style == "digital":
        gain, gamma, base = rng.uniform(0.9, 1.1), rng.uniform(0.8, 0.95), 0.0
    else:
        gain, gamma, base = rng.uniform(1.1, 1.35), rng.uniform(1.5, 1.9), rng.uniform(0.01, 0.045)
    exposure = 1.0 - np.exp(-np.float32(gain) * attenuation)
    return (np.float32(base) + np.float32(1 - base) * exposure ** np.float32(gamma)).astype(np.float32)


def _grain_and_vignette(rng: np.random.Generator, image: np.ndarray, strength: float) -> np.ndarray:
    """Slight vignetting, low-frequency film haze and film grain."""
    h, w = image.shape
    ys = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    xs = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    vignette = 1.0 - np.float32(rng.uniform(0.03, 0.12) * strength) * (xs * xs + ys * ys) / 2
    haze = cv2.resize(rng.standard_normal((8, 6), dtype=np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = rng.standard_normal((h, w), dtype=np.float32)
    sigma = np.float32(rng.uniform(0.004, 0.009) * strength)
    return image * vignette + np.float32(0.006 * strength) * haze + sigma * grain


def _label_text(rng: np.random.Generator, laterality: str, view: str) -> str:
    side = laterality[0]
    forms = (f"{side}{view}", f"{side}{view}", f"{side} {view}", f"{side}-{view}", f"{view} {side}")
    return forms[int(rng.integers(len(forms)))]


def _stamp_text(
    rng: np.random.Generator, image: np.ndarray, text: str, x: float, y: float, size: float
) -> None:
    """Burn ``text`` in, rotated by a random angle, centred at (x, y) (max-composited, may be cut)."""
    font = (cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_SIMPLEX)[int(rng.integers(2))]
    scale = size / 22.0
    thick = max(1, int(round(size / 9)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    side = int(np.hypot(tw, th + base)) + 4
    glyphs = np.zeros((side, side), np.uint8)
    cv2.putText(glyphs, text, ((side - tw) // 2, (side + th) // 2), font, scale, 255, thick, cv2.LINE_AA)
    patch = glyphs.astype(np.float32) / 255.0
    angle = float(rng.choice([0.0, rng.uniform(-70, -30), rng.uniform(-70, -30)]))
    rot = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    patch = cv2.warpAffine(patch, rot, (side, side), flags=cv2.INTER_LINEAR)
    canvas = np.zeros_like(image)
    _paste(canvas, patch * np.float32(rng.uniform(0.85, 1.0)), int(x), int(y))
    np.maximum(image, canvas, out=image)


def _burn_labels(rng: np.random.Generator, image: np.ndarray, laterality: str, view: str) -> None:
    """View label in the background corner away from the chest wall, sometimes touching the top edge."""
    h, w = image.shape
    size = h * rng.uniform(0.028, 0.04)
    far = rng.uniform(0.62, 0.85) if laterality == "LEFT" else rng.uniform(0.15, 0.38)
    y = h * rng.uniform(0.06, 0.14) if rng.random() > 0.2 else size * rng.uniform(0.0, 0.5)
    _stamp_text(rng, image, _label_text(rng, laterality, view), w * far, y, size)
    if rng.random() < 0.3:
        number = str(int(rng.integers(1, 40)))
        _stamp_text(rng, image, number, w * rng.uniform(0.4, 0.6), size * 0.3, size * 0.8)


def _borders(rng: np.random.Generator, image: np.ndarray) -> None:
    """Scanner edges: bright strips at the bottom or a side, partial white frames, grey scanner bands."""
    h, w = image.shape
    unit = max(1, h // 256)
    if rng.random() < 0.35:
        k = int(rng.integers(1, 4)) * unit
        image[h - k :, :] = np.maximum(image[h - k :, :], rng.uniform(0.8, 1.0))
    if rng.random() < 0.3:
        k = int(rng.integers(1, 3)) * unit
        cols = slice(w - k, w) if rng.random() < 0.5 else slice(0, k)
        rows = slice(int(h * rng.uniform(0, 0.3)), int(h * rng.uniform(0.7, 1.0)))
        image[rows, cols] = np.maximum(image[rows, cols], rng.uniform(0.75, 1.0))
    if rng.random() < 0.15:
        k = unit
        lo, hi = sorted(rng.uniform(0, 1, 2))
        image[:k, int(w * lo) : int(w * hi) + 1] = rng.uniform(0.8, 1.0)
    if rng.random() < 0.25:
        k = int(w * rng.uniform(0.01, 0.03)) + 1
        cols = slice(w - k, w) if rng.random() < 0.5 else slice(0, k)
        image[:, cols] = np.maximum(image[:, cols], rng.uniform(0.15, 0.35))
    if rng.random() < 0.08:
        k = unit
        for region in (np.s_[:k, :], np.s_[-k:, :], np.s_[:, :k], np.s_[:, -k:]):
            image[region] = np.maximum(image[region], 0.9)


# ------------------------------------------------------------------------------------------------------------
# Rendering
# ------------------------------------------------------------------------------------------------------------


def pick_width(rng: np.random.Generator, height: int) -> int:
    """An even image width of 0.55-0.65 x height."""
    return int(round(height * rng.uniform(0.55, 0.65) / 2)) * 2


def render_mammogram(
    rng: np.random.Generator,
    height: int,
    view: str,
    laterality: str,
    findings: Sequence[FindingSpec],
    cut_contour: bool,
    style: str = "film",
    *,
    density: int = 2,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Render one mammogram; pure (no I/O): all randomness comes from ``rng``.

    Returns the image (HxW, uint8 for ``style='film'``, uint16 for ``style='digital'``) and one bool ROI mask
    per finding (same size, True on the lesion). LEFT breasts have the chest wall on the left image edge,
    RIGHT breasts on the right. ``density`` is the BI-RADS breast density 1 (fatty) .. 4 (extremely dense).
    """
    _check_render_args(height, view, laterality, style, density)
    geom = _geometry_for(rng, height, view, cut_contour)
    anatomy = _anatomy(rng, geom, density)
    masks = _add_findings(rng, anatomy, geom, findings)
    image = _tone(rng, anatomy.attenuation, style)
    if laterality == "RIGHT":
        image = np.ascontiguousarray(image[:, ::-1])
        masks = [np.ascontiguousarray(m[:, ::-1]) for m in masks]
    if style == "film":
        image = _grain_and_vignette(rng, image, 1.0)
        _burn_labels(rng, image, laterality, view)
        _borders(rng, image)
        return np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), masks
    image = _digital_processing(rng, image)
    return np.clip(image * 65535 + 0.5, 0, 65535).astype(np.uint16), masks


def _digital_processing(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A digital detector's look: unsharp masking, quantum noise only on the breast, a black background."""
    blurred = cv2.GaussianBlur(image, (0, 0), image.shape[0] / 200)
    sharpened = image + np.float32(rng.uniform(0.4, 0.7)) * (image - blurred)
    noise = np.float32(0.002) * rng.standard_normal(image.shape, dtype=np.float32)
    return np.where(image > 0.01, sharpened + noise, 0.0).astype(np.float32)


def _geometry_for(rng: np.random.Generator, height: int, view: str, cut_contour: bool) -> _Geometry:
    """The geometry :func:`render_mammogram` draws from a generator in the same state (LEFT orientation)."""
    width = pick_width(rng, height)
    cut = str(rng.choice(["top", "bottom", "vertical", "far"], p=_cut_odds(view))) if cut_contour else ""
    return _breast_geometry(rng, height, width, view, cut)


def _cut_odds(view: str) -> list[float]:
    return [0.6, 0.1, 0.1, 0.2] if view == "MLO" else [0.2, 0.2, 0.35, 0.25]


def _check_render_args(height: int, view: str, laterality: str, style: str, density: int) -> None:
    if view not in VIEWS:
        raise ValueError(f"view: expected one of {VIEWS}, got {view!r}")
    if laterality not in LATERALITIES:
        raise ValueError(f"laterality: expected one of {LATERALITIES}, got {laterality!r}")
    if style not in STYLES:
        raise ValueError(f"style: expected one of {STYLES}, got {style!r}")
    if density not in _DENSITY_BIAS:
        raise ValueError(f"density: expected 1, 2, 3 or 4, got {density!r}")
    if height < 64:
        raise ValueError(f"height: expected at least 64 pixels, got {height!r}")


# ------------------------------------------------------------------------------------------------------------
# Planning the dataset: patients, images, findings, UIDs (all from one generator, before any rendering)
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FindingPlan:
    spec: FindingSpec
    abnormality_id: int
    assessment: int
    study_uid: str  # the crop/ROI-mask case folder's study
    crop_uid: str
    mask_uid: str
    crop_sop: str
    mask_sop: str
    crop_jpeg: str  # '1-NNN.jpg'
    mask_jpeg: str
    crop_first: bool  # the crop is 000000.dcm (else the ROI mask is)
    newline_crop: bool  # its CSV path ends in '\n'
    newline_mask: bool


@dataclass(frozen=True)
class _ImagePlan:
    index: int
    patient: str  # 'P_00001'
    split: str  # 'train' | 'test'
    laterality: str
    view: str
    density: int
    cut_contour: bool
    study_uid: str
    series_uid: str
    sop_uid: str
    jpeg_name: str
    findings: tuple[_FindingPlan, ...]
    empty_description: bool
    newline_full: bool
    study_date: str
    study_time: str


@dataclass(frozen=True)
class _HealthyPlan:
    index: int
    source: str  # 'healthy' | 'healthy_other_source'
    file: str  # relative to the set's folder
    laterality: str
    view: str
    density: int
    cut_contour: bool


class _Uids:
    """Unique, realistic dotted DICOM UIDs drawn from a generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.seen: set[str] = set()

    def new(self) -> str:
        while True:
            digits = self.rng.integers(0, 10, 38)
            uid = UID_ROOT + str(int(self.rng.integers(1, 5))) + "".join(map(str, digits))
            if uid not in self.seen:
                self.seen.add(uid)
                return uid


def _weighted(rng: np.random.Generator, table: Iterable[tuple[str, float]]) -> str:
    values, weights = zip(*table, strict=True)
    p = np.asarray(weights, float)
    return str(values[int(rng.choice(len(values), p=p / p.sum()))])


def _exact_flags(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    """n booleans of which exactly round(fraction * n) are True, at random places."""
    flags = np.zeros(n, bool)
    flags[rng.permutation(n)[: int(round(fraction * n))]] = True
    return flags


def _plan_views(rng: np.random.Generator, n_images: int) -> list[tuple[str, str, str, int]]:
    """(patient, laterality, view, density) per image: 1-4 images per patient, ids with gaps like P_00001."""
    combos = [(lat, view) for lat in LATERALITIES for view in VIEWS]
    out: list[tuple[str, str, str, int]] = []
    number = 0
    while len(out) < n_images:
        number += int(rng.integers(1, 4))
        density = int(rng.choice([1, 2, 3, 4], p=[0.15, 0.4, 0.3, 0.15]))
        count = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.35, 0.1, 0.2]))
        chosen = sorted(int(i) for i in rng.permutation(4)[:count])
        out.extend((f"P_{number:05d}", *combos[i], density) for i in chosen)
    return out[:n_images]


def _finding_kinds(rng: np.random.Generator, n: int) -> list[list[str]]:
    """Finding types per image: ~85 % one finding, ~15 % two or three, about half of those mass + calc."""
    multi = _exact_flags(rng, n, 0.15)
    mixed = np.zeros(n, bool)
    multi_index = np.flatnonzero(multi)
    mixed[multi_index[rng.permutation(len(multi_index))[: (len(multi_index) + 1) // 2]]] = True
    kinds = []
    for i in range(n):
        first = "mass" if rng.random() < 0.55 else "calcification"
        other = "calcification" if first == "mass" else "mass"
        count = (3 if rng.random() < 0.3 else 2) if multi[i] else 1
        extra = [
            other if (mixed[i] and j == 0) else (first if rng.random() < 0.7 else other)
            for j in range(count - 1)
        ]
        if mixed[i] and count == 3:
            extra[1] = first
        kinds.append([first, *extra])
    return kinds


def _finding_spec(rng: np.random.Generator, kind: str, pathology: str) -> FindingSpec:
    malignant = pathology == "MALIGNANT"
    if kind == "mass":
        subtype, extent = _weighted(rng, _MASS_SHAPES[malignant]), _weighted(rng, _MASS_MARGINS[malignant])
    else:
        subtype, extent = (
            _weighted(rng, _CALC_TYPES[malignant]),
            _weighted(rng, _CALC_DISTRIBUTIONS[malignant]),
        )
    subtlety = int(rng.choice([1, 2, 3, 4, 5], p=[0.05, 0.15, 0.3, 0.25, 0.25]))
    return FindingSpec(kind, pathology, subtype, extent, subtlety)


def _pathology(rng: np.random.Generator, kind: str, malignant_image: bool, first: bool) -> str:
    if malignant_image and (first or rng.random() < 0.4):
        return "MALIGNANT"
    without_callback = 0.45 if kind == "calcification" else 0.3
    return "BENIGN_WITHOUT_CALLBACK" if rng.random() < without_callback else "BENIGN"


def _assessment(rng: np.random.Generator, pathology: str) -> int:
    if pathology == "MALIGNANT":
        return int(rng.choice([4, 5, 3, 0], p=[0.5, 0.35, 0.1, 0.05]))
    if pathology == "BENIGN":
        return int(rng.choice([2, 3, 4, 0], p=[0.2, 0.35, 0.4, 0.05]))
    return int(rng.choice([2, 3, 0, 4], p=[0.45, 0.45, 0.05, 0.05]))


def _jpeg_name(rng: np.random.Generator) -> str:
    return f"1-{int(rng.integers(1, 300))}.jpg"


def _plan_findings(
    rng: np.random.Generator, uids: _Uids, kinds: list[str], malignant: bool
) -> tuple[_FindingPlan, ...]:
    """The findings of one image with their crop/ROI-mask series; ids count per abnormality type."""
    plans, counters = [], {"mass": 0, "calcification": 0}
    for j, kind in enumerate(kinds):
        counters[kind] += 1
        pathology = _pathology(rng, kind, malignant, j == 0)
        spec = _finding_spec(rng, kind, pathology)
        plans.append(_FindingPlan(
            spec=spec, abnormality_id=counters[kind], assessment=_assessment(rng, pathology),
            study_uid=uids.new(), crop_uid=uids.new(), mask_uid=uids.new(), crop_sop=uids.new(),
            mask_sop=uids.new(), crop_jpeg=_jpeg_name(rng), mask_jpeg=_jpeg_name(rng),
            crop_first=bool(rng.random() < 0.5), newline_crop=bool(rng.random() < 0.85),
            newline_mask=bool(rng.random() < 0.85),
        ))  # fmt: skip
    return tuple(plans)


def _date_time(rng: np.random.Generator) -> tuple[str, str]:
    day = np.datetime64("2016-01-01") + int(rng.integers(0, 700))
    seconds = int(rng.integers(8 * 3600, 18 * 3600))
    clock = (
        f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}.{int(rng.integers(0, 10**6)):06d}"
    )
    return str(day).replace("-", ""), clock


def _plan_images(spec: PhantomSpec) -> list[_ImagePlan]:
    """Every full mammogram of the CBIS-DDSM part, with its findings, UIDs and CSV quirks."""
    rng = np.random.default_rng([spec.seed, 0])
    uids = _Uids(rng)
    views = _plan_views(rng, spec.n_images)
    patients = sorted({v[0] for v in views})
    test = set(rng.permutation(patients)[: int(round(0.2 * len(patients)))].tolist())
    malignant = _exact_flags(rng, spec.n_images, spec.malignant_fraction)
    cut = _exact_flags(rng, spec.n_images, spec.cut_contour_fraction)
    kinds = _finding_kinds(rng, spec.n_images)
    no_description = _exact_flags(
        rng, spec.n_images, max(0.05, 1.0 / spec.n_images if spec.n_images >= 10 else 0)
    )
    plans = []
    for i, (patient, laterality, view, density) in enumerate(views):
        date, clock = _date_time(rng)
        plans.append(_ImagePlan(
            index=i, patient=patient, split="test" if patient in test else "train", laterality=laterality,
            view=view, density=density, cut_contour=bool(cut[i]), study_uid=uids.new(), series_uid=uids.new(),
            sop_uid=uids.new(), jpeg_name=_jpeg_name(rng),
            findings=_plan_findings(rng, uids, kinds[i], bool(malignant[i])),
            empty_description=bool(no_description[i]), newline_full=bool(rng.random() < 0.15),
            study_date=date, study_time=clock,
        ))  # fmt: skip
    return plans


def _plan_healthy(spec: PhantomSpec, source: str, count: int, prefix: str) -> list[_HealthyPlan]:
    """Healthy images of one set: random side/view/density, the same share of cut contours."""
    rng = np.random.default_rng([spec.seed, 1 if source == "healthy" else 2])
    cut = _exact_flags(rng, count, spec.cut_contour_fraction)
    plans = []
    for i in range(count):
        lat, view = LATERALITIES[int(rng.integers(2))], VIEWS[int(rng.integers(2))]
        density = int(rng.choice([1, 2, 3, 4], p=[0.15, 0.4, 0.3, 0.15]))
        name = f"images/{prefix}_{i + 1:04d}_{lat}_{view}.png"
        plans.append(_HealthyPlan(i, source, name, lat, view, density, bool(cut[i])))
    return plans


# ------------------------------------------------------------------------------------------------------------
# Rendering tasks (module-level so that worker processes can run them)
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Written:
    """What a task wrote: per file (relative path, rows, columns, min, max), truth per finding."""

    files: tuple[tuple[str, int, int, int, int], ...]
    truth: tuple[dict[str, object], ...]


def _encode_jpeg(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"could not encode {path} as JPEG")
    path.write_bytes(data.tobytes())


def _encode_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise OSError(f"could not encode {path} as PNG")
    path.write_bytes(data.tobytes())


def _file_record(relative: str, image: np.ndarray) -> tuple[str, int, int, int, int]:
    return relative, int(image.shape[0]), int(image.shape[1]), int(image.min()), int(image.max())


def _lesion_crop(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A tight crop of ``image`` around the lesion ``mask`` (bounding box plus a small margin)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        h, w = image.shape
        return image[h // 3 : 2 * h // 3, w // 4 : w // 2].copy()
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    pad = int(max(8 * image.shape[0] / 1024, 0.15 * max(y1 - y0, x1 - x0)))
    y0, x0 = max(0, y0 - pad), max(0, x0 - pad)
    y1, x1 = min(image.shape[0], y1 + pad), min(image.shape[1], x1 + pad)
    return image[y0:y1, x0:x1].copy()


def _truth_row(plan: _ImagePlan, finding: _FindingPlan, mask: np.ndarray, image: np.ndarray, geom: _Geometry):
    ys, xs = np.nonzero(mask)
    centre_x, centre_y = (float(xs.mean()), float(ys.mean())) if len(xs) else (-1.0, -1.0)
    return {
        "SeriesInstanceUID": plan.series_uid, "image_path": f"jpeg/{plan.series_uid}/{plan.jpeg_name}",
        "abnormality_type": finding.spec.abnormality, "pathology": finding.spec.pathology,
        "subtype": finding.spec.subtype, "extent": finding.spec.extent,
        "abnormality_id": finding.abnormality_id,
        "center_x": round(centre_x, 1), "center_y": round(centre_y, 1),
        "radius": round(float(np.sqrt(len(xs) / np.pi)), 1), "roi_series_uid": finding.mask_uid,
        "crop_series_uid": finding.crop_uid, "cut_contour": int(plan.cut_contour), "view": plan.view,
        "laterality": plan.laterality, "breast_density": plan.density, "width": image.shape[1],
        "height": image.shape[0], "pectoral_width": round(geom.pectoral[0], 1),
        "pectoral_height": round(geom.pectoral[1], 1), "pectoral_bow": round(geom.pectoral[2], 4),
        "style": "film",
    }  # fmt: skip


def _render_full(task: tuple[str, int, int, _ImagePlan]) -> _Written:
    """Render one full mammogram and write it, its lesion crops and ROI masks as JPEG series."""
    root, seed, height, plan = task
    key = [seed, 10, plan.index]
    geom = _geometry_for(np.random.default_rng(key), height, plan.view, plan.cut_contour)
    specs = [f.spec for f in plan.findings]
    image, masks = render_mammogram(np.random.default_rng(key), height, plan.view, plan.laterality, specs,
                                    plan.cut_contour, "film", density=plan.density)  # fmt: skip
    files = [_file_record(f"jpeg/{plan.series_uid}/{plan.jpeg_name}", image)]
    _encode_jpeg(Path(root) / files[0][0], image)
    truth = []
    for finding, mask in zip(plan.findings, masks, strict=True):
        crop, roi = _lesion_crop(image, mask), mask.astype(np.uint8) * 255
        for uid, name, picture in (
            (finding.crop_uid, finding.crop_jpeg, crop),
            (finding.mask_uid, finding.mask_jpeg, roi),
        ):
            files.append(_file_record(f"jpeg/{uid}/{name}", picture))
            _encode_jpeg(Path(root) / files[-1][0], picture)
        truth.append(_truth_row(plan, finding, mask, image, geom))
    return _Written(tuple(files), tuple(truth))


def _render_healthy(task: tuple[str, int, int, _HealthyPlan]) -> _Written:
    """Render one healthy image: film style as 8-bit PNG (JPEG-compressed like the CBIS part), or digital."""
    root, seed, height, plan = task
    style = "film" if plan.source == "healthy" else "digital"
    rng = np.random.default_rng([seed, 20 if style == "film" else 30, plan.index])
    image, _ = render_mammogram(
        rng, height, plan.view, plan.laterality, [], plan.cut_contour, style, density=plan.density
    )
    if style == "film":  # same acquisition chain as the CBIS part, JPEG artefacts included
        _, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    relative = f"{plan.source}/{plan.file}"
    _encode_png(Path(root) / relative, image)
    return _Written((_file_record(relative, image),), ())


def _run_task(task: tuple[str, int, int, _ImagePlan | _HealthyPlan]) -> _Written:
    """Render and write one planned image (full mammogram with its crops and masks, or healthy image)."""
    if isinstance(task[3], _ImagePlan):
        return _render_full(task)  # type: ignore[arg-type]
    return _render_healthy(task)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------------
# CSV files
# ------------------------------------------------------------------------------------------------------------


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[dict[str, object]]) -> None:
    """A CSV with ``\\n`` line ends; cells holding a newline are quoted (as in the real CBIS-DDSM CSVs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])


def _case_folder(plan: _ImagePlan, kind: str) -> str:
    """'Mass-Training_P_00001_LEFT_CC', 'Calc-Test_P_00002_RIGHT_MLO', ..."""
    prefix = "Mass" if kind == "mass" else "Calc"
    split = "Training" if plan.split == "train" else "Test"
    return f"{prefix}-{split}_{plan.patient}_{plan.laterality}_{plan.view}"


def _dcm_path(folder: str, study: str, series: str, number: int, newline: bool) -> str:
    return f"{folder}/{study}/{series}/{number:06d}.dcm" + ("\n" if newline else "")


def _case_row(plan: _ImagePlan, finding: _FindingPlan) -> dict[str, object]:
    folder = _case_folder(plan, finding.spec.abnormality)
    crop_number, mask_number = (0, 1) if finding.crop_first else (1, 0)
    sub = f"{folder}_{finding.abnormality_id}"
    mass = finding.spec.abnormality == "mass"
    return {
        "patient_id": plan.patient, "breast_density": plan.density, "breast density": plan.density,
        "left or right breast": plan.laterality, "image view": plan.view,
        "abnormality id": finding.abnormality_id, "abnormality type": finding.spec.abnormality,
        "mass shape": finding.spec.subtype if mass else "",
        "mass margins": finding.spec.extent if mass else "",
        "calc type": "" if mass else finding.spec.subtype,
        "calc distribution": "" if mass else finding.spec.extent,
        "assessment": finding.assessment, "pathology": finding.spec.pathology,
        "subtlety": finding.spec.subtlety,
        "image file path": _dcm_path(folder, plan.study_uid, plan.series_uid, 0, plan.newline_full),
        "cropped image file path": _dcm_path(sub, finding.study_uid, finding.crop_uid, crop_number,
        finding.newline_crop),
        "ROI mask file path": _dcm_path(sub, finding.study_uid, finding.mask_uid, mask_number,
        finding.newline_mask),
    }  # fmt: skip


def _write_case_csvs(csv_dir: Path, plans: Sequence[_ImagePlan]) -> dict[str, int]:
    """The four case-description CSVs, one row per finding, sorted like the real ones."""
    counts = {}
    for kind, columns in (("mass", MASS_COLUMNS), ("calc", CALC_COLUMNS)):
        abnormality = "mass" if kind == "mass" else "calcification"
        for split in ("train", "test"):
            rows = [
                (p.patient, p.laterality, p.view, f.abnormality_id, _case_row(p, f))
                for p in plans
                if p.split == split
                for f in p.findings
                if f.spec.abnormality == abnormality
            ]
            rows.sort(key=lambda r: r[:4])
            _write_csv(csv_dir / f"{kind}_case_description_{split}_set.csv", columns, (r[4] for r in rows))
            counts[f"{kind}_{split}"] = len(rows)
    return counts


def _dicom_row(plan: _ImagePlan, record: tuple[str, int, int, int, int], what: str, **fields: object):
    """One dicom_info.csv row for a JPEG of ``plan``'s case (``what``: full | crop | mask)."""
    relative, rows, cols, low, high = record
    bits = 8 if what == "mask" else 16
    factor = 1 if bits == 8 else 257
    return {
        "file_path": f"CBIS-DDSM/dicom/{fields['sop']}.dcm", "image_path": f"CBIS-DDSM/{relative}",
        "AccessionNumber": "", "BitsAllocated": bits, "BitsStored": bits, "BodyPartExamined": "BREAST",
        "Columns": cols, "ContentDate": plan.study_date, "ContentTime": plan.study_time,
        "ConversionType": "WSD",
        "HighBit": bits - 1, "InstanceNumber": fields.get("instance", 1),
        "LargestImagePixelValue": high * factor,
        "Laterality": plan.laterality[0], "Modality": "MG", "PatientBirthDate": "",
        "PatientID": fields["case"],
        "PatientName": fields["case"], "PatientOrientation": plan.view, "PatientSex": "F",
        "PhotometricInterpretation": "MONOCHROME2", "PixelRepresentation": 0, "ReferringPhysicianName": "",
        "Rows": rows, "SOPClassUID": SOP_CLASS_UID, "SOPInstanceUID": fields["sop"], "SamplesPerPixel": 1,
        "SeriesDescription": fields["description"], "SeriesInstanceUID": fields["series"],
        "SmallestImagePixelValue": low * factor, "StudyDate": plan.study_date, "StudyID": "DDSM",
        "StudyInstanceUID": fields["study"], "StudyTime": plan.study_time.split(".")[0],
    }  # fmt: skip


def _dicom_rows(plan: _ImagePlan, written: _Written) -> list[dict[str, object]]:
    """The dicom_info rows of one full image and its crops and ROI masks."""
    folder = _case_folder(plan, plan.findings[0].spec.abnormality)
    description = "" if plan.empty_description else FULL_DESCRIPTION
    rows = [_dicom_row(plan, written.files[0], "full", sop=plan.sop_uid, case=folder, description=description,
                       series=plan.series_uid, study=plan.study_uid)]  # fmt: skip
    for k, finding in enumerate(plan.findings):
        case = f"{_case_folder(plan, finding.spec.abnormality)}_{finding.abnormality_id}"
        crop_record, mask_record = written.files[1 + 2 * k], written.files[2 + 2 * k]
        rows.append(_dicom_row(plan, crop_record, "crop", sop=finding.crop_sop, case=case,
                    series=finding.crop_uid,
                               description=CROP_DESCRIPTION, study=finding.study_uid,
                               instance=1 if finding.crop_first else 2))  # fmt: skip
        rows.append(_dicom_row(plan, mask_record, "mask", sop=finding.mask_sop, case=case,
                    series=finding.mask_uid,
                               description=MASK_DESCRIPTION, study=finding.study_uid,
                               instance=2 if finding.crop_first else 1))  # fmt: skip
    return rows


def _write_dicom_info(
    csv_dir: Path, spec: PhantomSpec, plans: Sequence[_ImagePlan], written: Sequence[_Written]
):
    """dicom_info.csv (one row per JPEG, shuffled like the real file) and meta.csv (one row per series)."""
    rows = [row for plan, done in zip(plans, written, strict=True) for row in _dicom_rows(plan, done)]
    order = np.random.default_rng([spec.seed, 3]).permutation(len(rows))
    rows = [rows[i] for i in order]
    _write_csv(csv_dir / "dicom_info.csv", DICOM_INFO_COLUMNS, rows)
    meta = [
        {
            "SeriesInstanceUID": r["SeriesInstanceUID"],
            "StudyInstanceUID": r["StudyInstanceUID"],
            "Modality": "MG",
            "SeriesDescription": r["SeriesDescription"],
            "BodyPartExamined": "BREAST",
            "SeriesNumber": 1,
            "Collection": "CBIS-DDSM",
            "Visibility": 1,
            "ImageCount": 1,
        }
        for r in rows
    ]
    _write_csv(csv_dir / "meta.csv", META_COLUMNS, meta)  # fmt: skip
    return len(rows)


def _write_healthy_labels(root: Path, plans: Sequence[_HealthyPlan], source: str) -> None:
    rows = [{"file": p.file, "pathology": "NORMAL", "abnormality": "none", "laterality": p.laterality,
             "view": p.view} for p in plans]  # fmt: skip
    _write_csv(root / source / "labels.csv", HEALTHY_COLUMNS, rows)


def _readme(spec: PhantomSpec) -> str:
    return "\n".join([
        f"{README_MARKER} (synthetic data, no patient data)",
        "",
        "Written by mammogan_lib.phantom.write_phantom in the layout of the Kaggle copy of CBIS-DDSM",
        "(csv/ with dicom_info.csv, meta.csv and the four case-description CSVs; jpeg/<SeriesInstanceUID>/).",
        "healthy/ and healthy_other_source/ are image folders with labels.csv (healthy_other_source is",
        "rendered in a different, digital-like acquisition style, 16-bit PNG). phantom_truth.csv holds the",
        "ground truth per finding (lesion centre and radius in pixels of the full image); it is not part of",
        "the Kaggle layout.",
        "Numbers obtained on this phantom say that code works, not how well a model does on real mammograms.",
        "",
        f"seed: {spec.seed}",
        f"spec: {json.dumps(spec.as_dict(), sort_keys=True)}",
        "",
    ])  # fmt: skip


# ------------------------------------------------------------------------------------------------------------
# Public entry points
# ------------------------------------------------------------------------------------------------------------


def _default_workers(workers: int) -> int:
    if workers > 0:
        return workers
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _prepare_root(root: Path) -> None:
    """Create ``root``; an earlier phantom there is replaced, any other non-empty folder is refused."""
    if root.exists() and any(root.iterdir()):
        readme = root / "README.txt"
        if not (readme.is_file() and readme.read_text(encoding="utf-8").startswith(README_MARKER)):
            raise FileExistsError(f"{root} is not empty and holds no phantom (no README.txt starting with "
                                  f"{README_MARKER!r}); refusing to write a phantom into it")  # fmt: skip
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def write_phantom(root: Path, spec: PhantomSpec, workers: int = 0) -> PhantomSummary:
    """Write the phantom dataset described by ``spec`` under ``root`` (see the module docstring).

    ``workers`` processes render the images (0: one per CPU core); the output does not depend on it.
    ``root`` must not exist, be empty, or hold an earlier phantom (which is replaced). README.txt is written
    last, so a phantom with a README is complete.
    """
    started = time.perf_counter()
    root = Path(root)
    _prepare_root(root)
    plans = _plan_images(spec)
    healthy = _plan_healthy(spec, "healthy", spec.n_healthy, "N")
    other = _plan_healthy(spec, "healthy_other_source", spec.n_healthy_other_source, "D")
    tasks = [(str(root), spec.seed, spec.height, plan) for plan in [*plans, *healthy, *other]]
    written = list(parallel_map(_run_task, tasks, _default_workers(workers), chunksize=2))
    full = written[: len(plans)]
    n_dicom = _write_dicom_info(root / "csv", spec, plans, full)
    _write_case_csvs(root / "csv", plans)
    _write_csv(root / "phantom_truth.csv", TRUTH_COLUMNS, (row for w in full for row in w.truth))
    _write_healthy_labels(root, healthy, "healthy")
    _write_healthy_labels(root, other, "healthy_other_source")
    (root / "README.txt").write_text(_readme(spec), encoding="utf-8")
    return _summary(root, spec, plans, n_dicom, len(healthy), len(other), time.perf_counter() - started)


def _summary(root: Path, spec: PhantomSpec, plans: Sequence[_ImagePlan], n_dicom: int, n_healthy: int,
             n_other: int, seconds: float) -> PhantomSummary:  # fmt: skip
    findings = [f for p in plans for f in p.findings]
    kinds = [{f.spec.abnormality for f in p.findings} for p in plans]
    patients = {p.patient: p.split for p in plans}
    return PhantomSummary(
        root=root, spec=spec, n_full_images=len(plans), n_patients=len(patients),
        n_train_patients=sum(s == "train" for s in patients.values()),
        n_test_patients=sum(s == "test" for s in patients.values()), n_findings=len(findings),
        n_mass_findings=sum(f.spec.abnormality == "mass" for f in findings),
        n_calc_findings=sum(f.spec.abnormality == "calcification" for f in findings),
        n_malignant_images=sum(any(f.spec.malignant for f in p.findings) for p in plans),
        n_multi_finding_images=sum(len(p.findings) > 1 for p in plans),
        n_mass_and_calc_images=sum(len(k) > 1 for k in kinds),
        n_cut_contour=sum(p.cut_contour for p in plans),
        n_crops=len(findings), n_masks=len(findings), n_healthy=n_healthy, n_healthy_other_source=n_other,
        n_files=n_dicom + n_healthy + n_other + 9, seconds=round(seconds, 3),
    )  # fmt: skip


def phantom_matches(root: Path, spec: PhantomSpec) -> bool:
    """True when ``root`` holds a complete phantom written from ``spec``."""
    readme = Path(root) / "README.txt"
    if not readme.is_file():
        return False
    lines = readme.read_text(encoding="utf-8").splitlines()
    wanted = f"spec: {json.dumps(spec.as_dict(), sort_keys=True)}"
    return bool(lines) and lines[0].startswith(README_MARKER) and wanted in lines


def phantom_folder(data_path: Path, spec: PhantomSpec) -> Path:
    """``<data_path>/phantom/<key>``: one folder per spec, so runs with different phantoms (a smoke run
    and a full-size one, say) never overwrite the images another run is reading."""
    key = hashlib.sha256(json.dumps(spec.as_dict(), sort_keys=True).encode()).hexdigest()[:12]
    return Path(data_path) / "phantom" / f"n{spec.n_images}_h{spec.height}_s{spec.seed}_{key}"


def ensure_phantom(root: Path, spec: PhantomSpec, workers: int = 0) -> Path:
    """``root`` holding the phantom of ``spec``: reused when already there, else (re)written."""
    root = Path(root)
    if not phantom_matches(root, spec):
        write_phantom(root, spec, workers=workers)
    return root


def preview_grid_images(root: Path, n: int = 16, tile_height: int = 256) -> list[np.ndarray]:
    """``n`` full mammograms of the phantom at ``root``, spread over the dataset, at one tile size."""
    truth = Path(root) / "phantom_truth.csv"
    with truth.open(newline="", encoding="utf-8") as handle:
        paths = list(dict.fromkeys(row["image_path"] for row in csv.DictReader(handle)))
    if not paths or n <= 0:
        return []
    picks = [paths[int(i)] for i in np.unique(np.linspace(0, len(paths) - 1, min(n, len(paths))).round())]
    tile_width = int(round(tile_height * 0.65))
    tiles = []
    for relative in picks:
        image = cv2.imread(str(Path(root) / relative), cv2.IMREAD_GRAYSCALE)
        width = min(tile_width, int(round(image.shape[1] * tile_height / image.shape[0])))
        small = cv2.resize(image, (width, tile_height), interpolation=cv2.INTER_AREA)
        tiles.append(cv2.copyMakeBorder(small, 0, 0, 0, tile_width - width, cv2.BORDER_CONSTANT, value=0))
    return tiles
