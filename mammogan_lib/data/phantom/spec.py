"""The phantom's vocabulary (the CBIS-DDSM CSV columns and values it writes) and its specs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

# ------------------------------------------------------------------------------------------------------------
# Vocabulary and CSV columns
# ------------------------------------------------------------------------------------------------------------

DICOM_INFO_COLUMNS: tuple[str, ...] = (
    "file_path",
    "image_path",
    "AccessionNumber",
    "BitsAllocated",
    "BitsStored",
    "BodyPartExamined",
    "Columns",
    "ContentDate",
    "ContentTime",
    "ConversionType",
    "HighBit",
    "InstanceNumber",
    "LargestImagePixelValue",
    "Laterality",
    "Modality",
    "PatientBirthDate",
    "PatientID",
    "PatientName",
    "PatientOrientation",
    "PatientSex",
    "PhotometricInterpretation",
    "PixelRepresentation",
    "ReferringPhysicianName",
    "Rows",
    "SOPClassUID",
    "SOPInstanceUID",
    "SamplesPerPixel",
    "SeriesDescription",
    "SeriesInstanceUID",
    "SmallestImagePixelValue",
    "StudyDate",
    "StudyID",
    "StudyInstanceUID",
    "StudyTime",
)
META_COLUMNS: tuple[str, ...] = (
    "SeriesInstanceUID",
    "StudyInstanceUID",
    "Modality",
    "SeriesDescription",
    "BodyPartExamined",
    "SeriesNumber",
    "Collection",
    "Visibility",
    "ImageCount",
)
_PATH_COLUMNS = ("image file path", "cropped image file path", "ROI mask file path")
MASS_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "breast_density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "mass shape",
    "mass margins",
    "assessment",
    "pathology",
    "subtlety",
    *_PATH_COLUMNS,
)
CALC_COLUMNS: tuple[str, ...] = (
    "patient_id",
    "breast density",
    "left or right breast",
    "image view",
    "abnormality id",
    "abnormality type",
    "calc type",
    "calc distribution",
    "assessment",
    "pathology",
    "subtlety",
    *_PATH_COLUMNS,
)
HEALTHY_COLUMNS: tuple[str, ...] = ("file", "pathology", "abnormality", "laterality", "view")
TRUTH_COLUMNS: tuple[str, ...] = (
    "SeriesInstanceUID",
    "image_path",
    "abnormality_type",
    "pathology",
    "subtype",
    "extent",
    "abnormality_id",
    "center_x",
    "center_y",
    "radius",
    "roi_series_uid",
    "crop_series_uid",
    "cut_contour",
    "view",
    "laterality",
    "breast_density",
    "width",
    "height",
    "pectoral_width",
    "pectoral_height",
    "pectoral_bow",
    "style",
)

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
