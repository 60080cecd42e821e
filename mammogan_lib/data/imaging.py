"""Reading one grayscale mammogram of any supported kind into a float32 array in [0, 1].

:func:`read_grayscale` reads what OpenCV decodes (JPEG, PNG and PGM in 8 or 16 bits, TIFF, BMP) and DICOM
(``.dcm``, or any file with the ``DICM`` preamble, through pydicom). The kind is told from the file's first
bytes, not its name, so a mislabelled file is still read by the right decoder.

Scaling to [0, 1] follows the stored bit depth: 8-bit images are divided by 255, 16-bit PNG/TIFF by 65535,
PGM by the ``maxval`` its header declares (a 12-bit PGM with maxval 4095 reaches 1.0) and DICOM by
``2**BitsStored - 1`` (12 to 16-bit values stored in 16 bits alike), after inverting MONOCHROME1 images so
that dense tissue is bright in every format.

DICOMs as they come: where the header gives a presentation -- a VOI LUT, else a window centre/width (the first
of several: the default one) with its VOILUTFunction, after the modality rescale -- that presentation is what
is read, as a radiologist's viewer shows it (digital mammograms store 12-14 bits of which the window selects
the tissue range). Compressed transfer syntaxes are decoded by pydicom's plugins (pinned in pyproject.toml):
RLE natively, JPEG 2000 by pylibjpeg-openjpeg, JPEG-LS by pyjpegls, JPEG lossless/baseline (the RSNA
screening set's other syntax) by python-gdcm. A file no installed plugin decodes raises
:class:`ImageReadError` naming the file, its transfer syntax and the missing plugin, so that stages record it
as skipped with that reason.

``max_height`` downscales with ``cv2.INTER_AREA`` so that the height is at most ``max_height``. For JPEG,
OpenCV's reduced decoding (``IMREAD_REDUCED_GRAYSCALE_2/4/8``: the DCT is decoded at 1/2, 1/4 or 1/8 size)
is used first when the result stays at least ``max_height`` tall; it makes decoding a 3,000 x 5,000 scan
several times faster, and INTER_AREA finishes the job.

Every failure raises :class:`ImageReadError` naming the file and saying what was expected: a missing, empty
or truncated file (OpenCV silently fills a truncated JPEG with grey, so the end-of-image marker is checked
in the bytes; a PNG must end with its IEND chunk; pydicom reports short DICOM pixel data), an undecodable
file, a sample type other than 8 or 16-bit unsigned integers, and a constant (e.g. all-black) image.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

EXPECTED_KINDS = "a grayscale mammogram (JPEG, PNG, PGM, TIFF, BMP or DICOM)"
_REDUCED_JPEG_FLAGS = (
    (8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
    (4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
    (2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
)
# GDCM last: on a corrupt JPEG 2000 stream it aborts the whole process (an uncaught C++ exception) where
# pylibjpeg raises; it stays the decoder of JPEG lossless/baseline, which no other pinned plugin reads.
DECODING_PLUGINS: tuple[str, ...] = ("pydicom", "pylibjpeg", "pyjpegls", "pillow", "gdcm")
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


class ImageReadError(ValueError):
    """An image could not be read; the message names the file and says what was expected."""


@dataclass(frozen=True)
class LoadedImage:
    """One decoded grayscale image.

    ``pixels`` is float32, 2-D, in [0, 1] (scaled by the stored bit depth, see the module docstring);
    ``bit_depth`` is 8 or 16 (DICOM: BitsStored, e.g. 12); ``source_format`` is one of ``'jpeg'``, ``'png'``,
    ``'pgm'``, ``'tiff'``, ``'bmp'``, ``'dicom'`` or ``'other'``; ``original_shape`` is the stored
    ``(height, width)`` before any downscaling.
    """

    pixels: np.ndarray
    bit_depth: int
    source_format: str
    original_shape: tuple[int, int]


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Training-range images [-1, 1] -> uint8 [0, 255] (values outside are clipped)."""
    return np.round((np.clip(images, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def tile(images: list[np.ndarray] | np.ndarray, columns: int, gap: int = 2, fill: int = 128) -> np.ndarray:
    """Tile uint8 images of one shape ``(H, W)`` into one uint8 image, ``columns`` per row, with ``gap``
    pixels of ``fill`` (mid-grey) between tiles; a last row that is not full is padded with ``fill``."""
    count = len(images)
    if count == 0:
        raise ValueError("tile: no images to tile")
    height, width = images[0].shape
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    grid = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), fill, np.uint8)
    for index, image in enumerate(images):
        top, left = (index // columns) * (height + gap), (index % columns) * (width + gap)
        grid[top : top + height, left : left + width] = image
    return grid


def read_grayscale(path: Path, max_height: int | None = None) -> LoadedImage:
    """Read the grayscale image at ``path``, downscaled to at most ``max_height`` rows if given.

    Raises :class:`ImageReadError` (naming ``path``) when the file is missing, empty, truncated,
    undecodable, not 8/16-bit, or constant.
    """
    path = Path(path)
    if max_height is not None and max_height < 1:
        raise ValueError(f"max_height must be a positive number of rows or None, got {max_height}")
    data = _read_bytes(path)
    kind = detect_format(data, path)
    _check_complete(data, kind, path)
    if kind == "dicom":
        raw, bit_depth, scale = _decode_dicom(data, path)
        original_shape = (int(raw.shape[0]), int(raw.shape[1]))
    else:
        raw, original_shape = _decode_with_opencv(data, kind, path, max_height)
        raw = _to_single_channel(raw)
        bit_depth, scale = _bit_depth_and_scale(raw, data, kind, path)
    _check_not_constant(raw, path)
    raw = _downscale(raw, max_height)
    pixels = np.clip(raw.astype(np.float32) / np.float32(scale), 0.0, 1.0)
    return LoadedImage(pixels, bit_depth, kind, original_shape)


def detect_format(data: bytes, path: Path) -> str:
    """The kind of image ``data`` holds, from its magic bytes (the ``.dcm`` suffix also means DICOM)."""
    if data[128:132] == b"DICM" or path.suffix.lower() in (".dcm", ".dicom"):
        return "dicom"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:2] in (b"P2", b"P5"):
        return "pgm"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data.startswith(b"BM"):
        return "bmp"
    return "other"


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise ImageReadError(f"{path}: file not found (expected {EXPECTED_KINDS})")
    if not path.is_file():
        raise ImageReadError(f"{path}: not a regular file (expected {EXPECTED_KINDS})")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ImageReadError(f"{path}: cannot be read ({error}); expected {EXPECTED_KINDS}") from error
    if not data:
        raise ImageReadError(f"{path}: empty file (0 bytes); expected {EXPECTED_KINDS}")
    return data


def _check_complete(data: bytes, kind: str, path: Path) -> None:
    """Truncation checks that decoders do not make themselves (JPEG end marker, PNG IEND chunk)."""
    if kind == "jpeg" and b"\xff\xd9" not in data.rstrip(b"\x00\r\n\t ")[-32:]:
        raise ImageReadError(
            f"{path}: truncated JPEG (no end-of-image marker FFD9 at the end of its {len(data)} bytes); "
            "expected a complete JPEG file"
        )
    if kind == "png" and b"IEND" not in data[-64:]:
        raise ImageReadError(
            f"{path}: truncated PNG (no IEND chunk at the end of its {len(data)} bytes); "
            "expected a complete PNG file"
        )


def _decode_with_opencv(
    data: bytes, kind: str, path: Path, max_height: int | None
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode with OpenCV; JPEGs use reduced decoding when ``max_height`` allows it."""
    buffer = np.frombuffer(data, np.uint8)
    if kind == "jpeg" and max_height is not None:
        size = jpeg_size(data)
        if size is not None:
            for factor, flag in _REDUCED_JPEG_FLAGS:
                if -(-size[0] // factor) >= max_height:
                    image = cv2.imdecode(buffer, flag | cv2.IMREAD_IGNORE_ORIENTATION)
                    if image is not None:
                        return image, size
                    break
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise ImageReadError(
            f"{path}: OpenCV cannot decode it ({error}); expected {EXPECTED_KINDS}"
        ) from error
    if image is None or image.size == 0:
        raise ImageReadError(f"{path}: OpenCV cannot decode it as {kind}; expected {EXPECTED_KINDS}")
    return image, (int(image.shape[0]), int(image.shape[1]))


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(height, width)`` from a JPEG's start-of-frame header, or None if none is found."""
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker in _SOF_MARKERS:
            height = int.from_bytes(data[position + 5 : position + 7], "big")
            width = int.from_bytes(data[position + 7 : position + 9], "big")
            return (height, width) if height and width else None
        position += 2 + length
    return None


def _to_single_channel(image: np.ndarray) -> np.ndarray:
    """Gray from 1, 2 (gray + alpha), 3 or 4 channels; equal colour channels are taken as they are."""
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels <= 2:
        return np.ascontiguousarray(image[:, :, 0])
    colour = image[:, :, :3]
    if np.array_equal(colour[:, :, 0], colour[:, :, 1]) and np.array_equal(colour[:, :, 0], colour[:, :, 2]):
        return np.ascontiguousarray(colour[:, :, 0])
    return cv2.cvtColor(np.ascontiguousarray(colour), cv2.COLOR_BGR2GRAY)


def _bit_depth_and_scale(image: np.ndarray, data: bytes, kind: str, path: Path) -> tuple[int, int]:
    """Bit depth and the value that maps to 1.0; only uint8 and uint16 are accepted."""
    if image.dtype == np.uint8:
        return 8, 255
    if image.dtype == np.uint16:
        if kind == "pgm":
            maxval = pgm_maxval(data)
            if maxval is not None:
                return (8 if maxval <= 255 else 16), maxval
        return 16, 65535
    raise ImageReadError(f"{path}: expected 8-bit or 16-bit grayscale, got {image.dtype}")


def pgm_maxval(data: bytes) -> int | None:
    """The ``maxval`` field of a PGM header (comments allowed), or None if it cannot be parsed."""
    fields: list[bytes] = []
    for line in data[:1024].split(b"\n"):
        fields.extend(line.split(b"#", 1)[0].split())
        if len(fields) >= 4:
            break
    try:
        maxval = int(fields[3])
    except (IndexError, ValueError):
        return None
    return maxval if 0 < maxval < 65536 else None


def _decode_dicom(data: bytes, path: Path) -> tuple[np.ndarray, int, float]:
    """Pixels, BitsStored and the value that maps to 1.0: the VOI LUT or first window of the header if it
    has one (values already in [0, 1]), else the stored values scaled by ``2**BitsStored - 1``; MONOCHROME1
    inverted either way."""
    import pydicom  # imported here: only DICOM reading needs it

    try:
        dataset = pydicom.dcmread(io.BytesIO(data), force=True)
    except Exception as error:  # pydicom raises many types for broken files
        raise ImageReadError(
            f"{path}: cannot read the DICOM header ({type(error).__name__}: {error}); "
            "expected a complete single-frame grayscale DICOM"
        ) from error
    syntax = transfer_syntax_name(dataset)
    missing = missing_decoder(dataset)
    if missing:
        raise ImageReadError(f"{path}: cannot decode transfer syntax {syntax}: {missing}")
    try:
        plugin = decoding_plugin(dataset)
        if plugin:
            dataset.pixel_array_options(decoding_plugin=plugin)
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom and its plugins raise many types for broken pixel data
        raise ImageReadError(
            f"{path}: cannot decode the DICOM pixel data (transfer syntax {syntax}; "
            f"{type(error).__name__}: {error}); expected a complete single-frame grayscale DICOM"
        ) from error
    bits = int(getattr(dataset, "BitsStored", 0) or pixels.dtype.itemsize * 8)
    if pixels.ndim == 3 and int(getattr(dataset, "SamplesPerPixel", 1)) == 3:
        pixels = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY)
    if pixels.ndim != 2:
        raise ImageReadError(
            f"{path}: expected a single-frame grayscale DICOM, got pixel array {pixels.shape}"
        )
    if pixels.dtype.kind == "i" and pixels.min() >= 0 and pixels.dtype.itemsize <= 2:
        pixels = pixels.astype(np.uint16)
    if pixels.dtype not in (np.uint8, np.uint16) or not 1 <= bits <= 16:
        raise ImageReadError(
            f"{path}: expected 8-bit or 16-bit grayscale, got {pixels.dtype} ({bits} bits stored)"
        )
    monochrome1 = str(getattr(dataset, "PhotometricInterpretation", "")).upper() == "MONOCHROME1"
    presented = presentation_values(pixels, dataset)
    if presented is not None:
        return (1.0 - presented if monochrome1 else presented), bits, 1.0
    scale = (1 << bits) - 1
    if monochrome1:
        pixels = (scale - np.minimum(pixels.astype(np.int32), scale)).astype(pixels.dtype)
    return pixels, bits, scale


def transfer_syntax_name(dataset: object) -> str:
    """'JPEG 2000 Image Compression (Lossless Only) (1.2.840.10008.1.2.4.90)', or what the header lacks."""
    uid = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if uid is None:
        return "not stated (no file meta information; read as implicit VR little endian)"
    return f"{uid.name} ({uid})" if uid.name != str(uid) else str(uid)


def missing_decoder(dataset: object) -> str:
    """'' when pydicom can decode the dataset's transfer syntax here, else what is missing."""
    from pydicom.pixels import get_decoder

    uid = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if uid is None or not uid.is_compressed:
        return ""
    try:
        decoder = get_decoder(uid)
    except NotImplementedError:
        return (
            "pydicom has no decoder for it (expected an uncompressed, RLE, JPEG, JPEG-LS or JPEG 2000 DICOM)"
        )
    if decoder.is_available:
        return ""
    needs = "; ".join(decoder.missing_dependencies) or "a decoder plugin"
    return f"no decoder plugin for it is installed (any of: {needs})"


def decoding_plugin(dataset: object) -> str:
    """The pydicom plugin to decode with: the first available of :data:`DECODING_PLUGINS` ('' when the
    data are not compressed)."""
    from pydicom.pixels import get_decoder

    uid = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
    if uid is None or not uid.is_compressed:
        return ""
    available = get_decoder(uid).available_plugins
    return next((name for name in DECODING_PLUGINS if name in available), "")


def _first_value(element: object) -> float | None:
    """The first of a possibly multi-valued numeric header element (several windows: the first is the
    default one), or None when absent or not a number."""
    from pydicom.multival import MultiValue

    if element is None:
        return None
    value = element[0] if isinstance(element, MultiValue | list | tuple) and len(element) else element
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def voi_lut_values(values: np.ndarray, item: object) -> np.ndarray:
    """``values`` through one VOI LUT item, in [0, 1] (float32): inputs below the first mapped value take
    the first entry, above the last the last (PS3.3 C.11.2.1.1). Done here because pydicom 3.0.2's
    ``apply_voi`` indexes a LUT of 8-bit entries with 8-bit indices, wrapping every input above 255."""
    entries, first_mapped, entry_bits = (int(v) for v in item.LUTDescriptor)
    data = item.LUTData
    table = np.frombuffer(data, "<u2") if isinstance(data, bytes) else np.asarray(data, np.float64)
    table = np.asarray(table, np.float64)[: entries or 65536]
    index = np.clip(np.round(np.asarray(values, np.float64)) - first_mapped, 0, len(table) - 1)
    return np.clip(table[index.astype(np.int64)] / ((1 << entry_bits) - 1), 0.0, 1.0).astype(np.float32)


def presentation_values(pixels: np.ndarray, dataset: object) -> np.ndarray | None:
    """The header's presentation of ``pixels`` in [0, 1] (float32): modality rescale, then the first VOI LUT
    or, without one, the first window (centre/width, VOILUTFunction LINEAR, LINEAR_EXACT or SIGMOID, DICOM
    PS3.3 C.11.2.1.2); None when the header has neither (or an unusable window of width < 1)."""
    from pydicom.pixels import apply_modality_lut

    values = apply_modality_lut(pixels, dataset)
    lut_items = getattr(dataset, "VOILUTSequence", None)
    if lut_items:
        return voi_lut_values(values, lut_items[0])
    centre = _first_value(getattr(dataset, "WindowCenter", None))
    width = _first_value(getattr(dataset, "WindowWidth", None))
    if centre is None or width is None or width < 1:
        return None
    x = np.asarray(values, dtype=np.float64)
    function = str(getattr(dataset, "VOILUTFunction", "") or "LINEAR").upper()
    if function == "SIGMOID":
        presented = 1.0 / (1.0 + np.exp(-4.0 * (x - centre) / width))
    elif function == "LINEAR_EXACT":
        presented = (x - centre) / width + 0.5
    else:
        presented = (x - (centre - 0.5)) / (width - 1.0) + 0.5 if width > 1 else (x >= centre) * 1.0
    return np.clip(presented, 0.0, 1.0).astype(np.float32)


def _check_not_constant(image: np.ndarray, path: Path) -> None:
    low, high = image.min(), image.max()
    if low == high:
        raise ImageReadError(
            f"{path}: all pixels equal {float(low):g}: an empty or blank image "
            "(expected a mammogram with a breast)"
        )


def _downscale(image: np.ndarray, max_height: int | None) -> np.ndarray:
    """INTER_AREA downscale keeping the aspect ratio so that the height is at most ``max_height``."""
    height, width = image.shape
    if max_height is None or height <= max_height:
        return image
    new_width = max(1, int(round(width * max_height / height)))
    return cv2.resize(image, (new_width, max_height), interpolation=cv2.INTER_AREA)
