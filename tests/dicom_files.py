"""DICOM files written by code, in every transfer syntax the real datasets ship (RSNA: JPEG 2000 and JPEG
lossless; VinDr-Mammo and INbreast: uncompressed; CBIS-DDSM: RLE), with the header fields that change how
pixels are read (BitsStored, MONOCHROME1, window centre/width, VOI LUT)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    UID,
    DigitalMammographyXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    RLELossless,
    generate_uid,
)

# pydicom encodes these itself (with its plugins); JPEG lossless (process 14) is transcoded by GDCM.
PYDICOM_ENCODED: tuple[UID, ...] = (RLELossless, JPEG2000Lossless, JPEGLSLossless)
TRANSFER_SYNTAXES: tuple[UID, ...] = (ExplicitVRLittleEndian, *PYDICOM_ENCODED, JPEGLosslessSV1)


def mammogram_pixels(shape: tuple[int, int] = (64, 48), top: int = 4095, seed: int = 0) -> np.ndarray:
    """A uint16 image with a bright 'breast' on a dark background, values in [0, top], not constant."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    breast = ((yy - shape[0] / 2) / (0.45 * shape[0])) ** 2 + (xx / (0.8 * shape[1])) ** 2 < 1
    pixels = np.where(breast, 0.7 * top, 0.05 * top) + rng.normal(0, 0.02 * top, shape)
    pixels[0, 0], pixels[-1, -1] = 0, top  # the full range is used: exact scaling is testable
    return np.clip(np.round(pixels), 0, top).astype(np.uint16)


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    bits_stored: int = 12,
    transfer_syntax: UID = ExplicitVRLittleEndian,
    photometric: str = "MONOCHROME2",
    header: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``pixels`` (uint16, values < 2**bits_stored) as a digital mammogram in ``transfer_syntax``;
    ``header`` adds or overrides elements (e.g. WindowCenter, Laterality, SeriesInstanceUID)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DigitalMammographyXRayImageStorageForPresentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    dataset.Modality, dataset.PatientID = "MG", "TEST"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, photometric
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, bits_stored, bits_stored - 1
    dataset.PixelRepresentation = 0
    dataset.PixelData = pixels.astype(np.uint16).tobytes()
    for name, value in (header or {}).items():
        setattr(dataset, name, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    if transfer_syntax in PYDICOM_ENCODED:
        dataset.compress(transfer_syntax)
    dataset.save_as(path, enforce_file_format=True)
    if transfer_syntax == JPEGLosslessSV1:
        transcode_with_gdcm(path, JPEGLosslessSV1)
    elif transfer_syntax not in (ExplicitVRLittleEndian, *PYDICOM_ENCODED):
        raise ValueError(f"write_dicom: no encoder here for {transfer_syntax.name}")
    return path


def transcode_with_gdcm(path: Path, transfer_syntax: UID) -> None:
    """Rewrite ``path`` in ``transfer_syntax`` with GDCM (pydicom has no JPEG lossless encoder)."""
    import gdcm

    syntaxes = {JPEGLosslessSV1: gdcm.TransferSyntax.JPEGLosslessProcess14_1}
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    assert reader.Read(), path
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(syntaxes[transfer_syntax]))
    change.SetInput(reader.GetImage())
    assert change.Change(), f"GDCM could not transcode {path} to {transfer_syntax.name}"
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(path))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    assert writer.Write(), path


def write_undecodable(path: Path, transfer_syntax: UID = JPEG2000Lossless) -> Path:
    """A DICOM that claims ``transfer_syntax`` but whose pixel data is not a valid codestream."""
    write_dicom(path, mammogram_pixels(), transfer_syntax=transfer_syntax)
    from pydicom import dcmread
    from pydicom.encaps import encapsulate

    dataset = dcmread(path)
    dataset.PixelData = encapsulate([b"\xff\x4f\xff\x51 not a codestream" * 4])
    dataset.save_as(path, enforce_file_format=True)
    return path
