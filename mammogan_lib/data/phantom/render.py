"""One synthetic mammogram from an attenuation model: texture, breast geometry, anatomy, lesions, film.

See :mod:`mammogan_lib.data.phantom` for the model; :func:`render_mammogram` is the entry point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from mammogan_lib.data.phantom.spec import LATERALITIES, STYLES, VIEWS, FindingSpec

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
    p = {
        "yc": yc,
        "b_up": room_up * rng.uniform(0.72, 1.0),
        "b_down": room_down * rng.uniform(0.72, 1.0),
        "a": w * rng.uniform(0.42, 0.72),
        "p_up": rng.uniform(0.8, 1.3),
        "p_down": rng.uniform(0.8, 1.3),
        "m_up": rng.uniform(0.0, 0.15),
        "drop": h * rng.uniform(-0.04, 0.04),
    }
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
    return p


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
        pectoral = _fit_pectoral(
            contour, w * rng.uniform(0.28, 0.45), top + h * rng.uniform(0.3, 0.45), rng.uniform(0.55, 0.85)
        )
    return _Geometry(h, w, contour, nipple, p["yc"], p["a"], pectoral, cut)


def _fit_pectoral(contour: np.ndarray, width: float, height: float, bow: float) -> tuple[float, float, float]:
    """Narrow the pectoral triangle so that below the axillary tip it covers at most 65 % of the breast
    width."""
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
