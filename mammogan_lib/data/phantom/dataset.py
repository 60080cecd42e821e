"""The phantom dataset in the Kaggle CBIS-DDSM layout: planning patients, images and findings from the
spec's seed, rendering them in worker processes, and writing the CSV files and the folder.

:func:`write_phantom` / :func:`ensure_phantom` are the entry points (see :mod:`mammogan_lib.data.phantom`).
"""

from __future__ import annotations

import csv
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

from mammogan_lib.core.parallel import parallel_map
from mammogan_lib.data.phantom.render import _Geometry, _geometry_for, render_mammogram
from mammogan_lib.data.phantom.spec import (
    _CALC_DISTRIBUTIONS,
    _CALC_TYPES,
    _MASS_MARGINS,
    _MASS_SHAPES,
    CALC_COLUMNS,
    CROP_DESCRIPTION,
    DICOM_INFO_COLUMNS,
    FULL_DESCRIPTION,
    HEALTHY_COLUMNS,
    JPEG_QUALITY,
    LATERALITIES,
    MASK_DESCRIPTION,
    MASS_COLUMNS,
    META_COLUMNS,
    README_MARKER,
    SOP_CLASS_UID,
    TRUTH_COLUMNS,
    UID_ROOT,
    VIEWS,
    FindingSpec,
    PhantomSpec,
    PhantomSummary,
)

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
        plans.append(
            _FindingPlan(
                spec=spec,
                abnormality_id=counters[kind],
                assessment=_assessment(rng, pathology),
                study_uid=uids.new(),
                crop_uid=uids.new(),
                mask_uid=uids.new(),
                crop_sop=uids.new(),
                mask_sop=uids.new(),
                crop_jpeg=_jpeg_name(rng),
                mask_jpeg=_jpeg_name(rng),
                crop_first=bool(rng.random() < 0.5),
                newline_crop=bool(rng.random() < 0.85),
                newline_mask=bool(rng.random() < 0.85),
            )
        )
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
        plans.append(
            _ImagePlan(
                index=i,
                patient=patient,
                split="test" if patient in test else "train",
                laterality=laterality,
                view=view,
                density=density,
                cut_contour=bool(cut[i]),
                study_uid=uids.new(),
                series_uid=uids.new(),
                sop_uid=uids.new(),
                jpeg_name=_jpeg_name(rng),
                findings=_plan_findings(rng, uids, kinds[i], bool(malignant[i])),
                empty_description=bool(no_description[i]),
                newline_full=bool(rng.random() < 0.15),
                study_date=date,
                study_time=clock,
            )
        )
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
        "SeriesInstanceUID": plan.series_uid,
        "image_path": f"jpeg/{plan.series_uid}/{plan.jpeg_name}",
        "abnormality_type": finding.spec.abnormality,
        "pathology": finding.spec.pathology,
        "subtype": finding.spec.subtype,
        "extent": finding.spec.extent,
        "abnormality_id": finding.abnormality_id,
        "center_x": round(centre_x, 1),
        "center_y": round(centre_y, 1),
        "radius": round(float(np.sqrt(len(xs) / np.pi)), 1),
        "roi_series_uid": finding.mask_uid,
        "crop_series_uid": finding.crop_uid,
        "cut_contour": int(plan.cut_contour),
        "view": plan.view,
        "laterality": plan.laterality,
        "breast_density": plan.density,
        "width": image.shape[1],
        "height": image.shape[0],
        "pectoral_width": round(geom.pectoral[0], 1),
        "pectoral_height": round(geom.pectoral[1], 1),
        "pectoral_bow": round(geom.pectoral[2], 4),
        "style": "film",
    }


def _render_full(task: tuple[str, int, int, _ImagePlan]) -> _Written:
    """Render one full mammogram and write it, its lesion crops and ROI masks as JPEG series."""
    root, seed, height, plan = task
    key = [seed, 10, plan.index]
    geom = _geometry_for(np.random.default_rng(key), height, plan.view, plan.cut_contour)
    specs = [f.spec for f in plan.findings]
    image, masks = render_mammogram(
        np.random.default_rng(key),
        height,
        plan.view,
        plan.laterality,
        specs,
        plan.cut_contour,
        "film",
        density=plan.density,
    )
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
        "patient_id": plan.patient,
        "breast_density": plan.density,
        "breast density": plan.density,
        "left or right breast": plan.laterality,
        "image view": plan.view,
        "abnormality id": finding.abnormality_id,
        "abnormality type": finding.spec.abnormality,
        "mass shape": finding.spec.subtype if mass else "",
        "mass margins": finding.spec.extent if mass else "",
        "calc type": "" if mass else finding.spec.subtype,
        "calc distribution": "" if mass else finding.spec.extent,
        "assessment": finding.assessment,
        "pathology": finding.spec.pathology,
        "subtlety": finding.spec.subtlety,
        "image file path": _dcm_path(folder, plan.study_uid, plan.series_uid, 0, plan.newline_full),
        "cropped image file path": _dcm_path(
            sub, finding.study_uid, finding.crop_uid, crop_number, finding.newline_crop
        ),
        "ROI mask file path": _dcm_path(
            sub, finding.study_uid, finding.mask_uid, mask_number, finding.newline_mask
        ),
    }


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
        "file_path": f"CBIS-DDSM/dicom/{fields['sop']}.dcm",
        "image_path": f"CBIS-DDSM/{relative}",
        "AccessionNumber": "",
        "BitsAllocated": bits,
        "BitsStored": bits,
        "BodyPartExamined": "BREAST",
        "Columns": cols,
        "ContentDate": plan.study_date,
        "ContentTime": plan.study_time,
        "ConversionType": "WSD",
        "HighBit": bits - 1,
        "InstanceNumber": fields.get("instance", 1),
        "LargestImagePixelValue": high * factor,
        "Laterality": plan.laterality[0],
        "Modality": "MG",
        "PatientBirthDate": "",
        "PatientID": fields["case"],
        "PatientName": fields["case"],
        "PatientOrientation": plan.view,
        "PatientSex": "F",
        "PhotometricInterpretation": "MONOCHROME2",
        "PixelRepresentation": 0,
        "ReferringPhysicianName": "",
        "Rows": rows,
        "SOPClassUID": SOP_CLASS_UID,
        "SOPInstanceUID": fields["sop"],
        "SamplesPerPixel": 1,
        "SeriesDescription": fields["description"],
        "SeriesInstanceUID": fields["series"],
        "SmallestImagePixelValue": low * factor,
        "StudyDate": plan.study_date,
        "StudyID": "DDSM",
        "StudyInstanceUID": fields["study"],
        "StudyTime": plan.study_time.split(".")[0],
    }


def _dicom_rows(plan: _ImagePlan, written: _Written) -> list[dict[str, object]]:
    """The dicom_info rows of one full image and its crops and ROI masks."""
    folder = _case_folder(plan, plan.findings[0].spec.abnormality)
    description = "" if plan.empty_description else FULL_DESCRIPTION
    rows = [
        _dicom_row(
            plan,
            written.files[0],
            "full",
            sop=plan.sop_uid,
            case=folder,
            description=description,
            series=plan.series_uid,
            study=plan.study_uid,
        )
    ]
    for k, finding in enumerate(plan.findings):
        case = f"{_case_folder(plan, finding.spec.abnormality)}_{finding.abnormality_id}"
        crop_record, mask_record = written.files[1 + 2 * k], written.files[2 + 2 * k]
        rows.append(
            _dicom_row(
                plan,
                crop_record,
                "crop",
                sop=finding.crop_sop,
                case=case,
                series=finding.crop_uid,
                description=CROP_DESCRIPTION,
                study=finding.study_uid,
                instance=1 if finding.crop_first else 2,
            )
        )
        rows.append(
            _dicom_row(
                plan,
                mask_record,
                "mask",
                sop=finding.mask_sop,
                case=case,
                series=finding.mask_uid,
                description=MASK_DESCRIPTION,
                study=finding.study_uid,
                instance=2 if finding.crop_first else 1,
            )
        )
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
    _write_csv(csv_dir / "meta.csv", META_COLUMNS, meta)
    return len(rows)


def _write_healthy_labels(root: Path, plans: Sequence[_HealthyPlan], source: str) -> None:
    rows = [
        {
            "file": p.file,
            "pathology": "NORMAL",
            "abnormality": "none",
            "laterality": p.laterality,
            "view": p.view,
        }
        for p in plans
    ]
    _write_csv(root / source / "labels.csv", HEALTHY_COLUMNS, rows)


def _readme(spec: PhantomSpec) -> str:
    return "\n".join(
        [
            f"{README_MARKER} (synthetic data, no patient data)",
            "",
            "Written by mammogan_lib.data.phantom.write_phantom in the layout of the Kaggle copy of "
            "CBIS-DDSM",
            "(csv/ with dicom_info.csv, meta.csv and the four"
            " case-description CSVs; jpeg/<SeriesInstanceUID>/).",
            "healthy/ and healthy_other_source/ are image folders with labels.csv (healthy_other_source is",
            "rendered in a different, digital-like acquisition style,"
            " 16-bit PNG). phantom_truth.csv holds the",
            "ground truth per finding (lesion centre and radius in"
            " pixels of the full image); it is not part of",
            "the Kaggle layout.",
            "Numbers obtained on this phantom say that code works, not"
            " how well a model does on real mammograms.",
            "",
            f"seed: {spec.seed}",
            f"spec: {json.dumps(spec.as_dict(), sort_keys=True)}",
            "",
        ]
    )


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
            raise FileExistsError(
                f"{root} is not empty and holds no phantom (no README.txt starting with "
                f"{README_MARKER!r}); refusing to write a phantom into it"
            )
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


def _summary(
    root: Path,
    spec: PhantomSpec,
    plans: Sequence[_ImagePlan],
    n_dicom: int,
    n_healthy: int,
    n_other: int,
    seconds: float,
) -> PhantomSummary:
    findings = [f for p in plans for f in p.findings]
    kinds = [{f.spec.abnormality for f in p.findings} for p in plans]
    patients = {p.patient: p.split for p in plans}
    return PhantomSummary(
        root=root,
        spec=spec,
        n_full_images=len(plans),
        n_patients=len(patients),
        n_train_patients=sum(s == "train" for s in patients.values()),
        n_test_patients=sum(s == "test" for s in patients.values()),
        n_findings=len(findings),
        n_mass_findings=sum(f.spec.abnormality == "mass" for f in findings),
        n_calc_findings=sum(f.spec.abnormality == "calcification" for f in findings),
        n_malignant_images=sum(any(f.spec.malignant for f in p.findings) for p in plans),
        n_multi_finding_images=sum(len(p.findings) > 1 for p in plans),
        n_mass_and_calc_images=sum(len(k) > 1 for k in kinds),
        n_cut_contour=sum(p.cut_contour for p in plans),
        n_crops=len(findings),
        n_masks=len(findings),
        n_healthy=n_healthy,
        n_healthy_other_source=n_other,
        n_files=n_dicom + n_healthy + n_other + 9,
        seconds=round(seconds, 3),
    )


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
