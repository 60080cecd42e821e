"""Choose a dataset's layout and load it into the standard catalogue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mammogan_lib.core import progress
from mammogan_lib.data.datasets import folder, inbreast, kaggle_jpeg, mias, roi, rsna, tcia, vindr
from mammogan_lib.data.datasets.catalogue import LAYOUTS, LoadedDataset, problems_summary
from mammogan_lib.data.datasets.tables import find_in_folder

AUTO = "auto"
LOADERS: dict[str, Callable[[Path], LoadedDataset]] = {
    kaggle_jpeg.LAYOUT: kaggle_jpeg.load_kaggle_jpeg,
    tcia.LAYOUT: tcia.load_tcia_dicom,
    folder.LAYOUT: folder.load_image_folder,
    roi.LAYOUT: roi.load_roi_patches,
    mias.LAYOUT: mias.load_mini_mias,
    inbreast.LAYOUT: inbreast.load_inbreast,
    vindr.LAYOUT: vindr.load_vindr_mammo,
    rsna.LAYOUT: rsna.load_rsna_screening,
}
EXPECTED = (
    f"expected csv/{kaggle_jpeg.DICOM_INFO} (Kaggle JPEG), *case_description*.csv with .dcm files (TCIA), "
    f"{folder.LABELS} (image folder; with a '{roi.KIND_COLUMN}' column: pre-cut crops), {mias.INFO} with "
    f"mdbNNN.pgm (mini-MIAS), {inbreast.LABELS} or "
    f"{inbreast.SPREADSHEET} with {inbreast.DICOMS}/ (INbreast), {vindr.BREAST_LEVEL} with {vindr.FINDINGS} "
    f"(VinDr-Mammo) or {rsna.LABELS} with RSNA's columns and {rsna.IMAGES}/ (RSNA screening)"
)
assert tuple(LOADERS) == LAYOUTS


def _check_root(root: Path) -> None:
    if not root.exists():
        raise FileNotFoundError(f"dataset root {root} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"dataset root {root} is not a folder")


def _marker_layout(root: Path) -> str:
    """The layout whose marker file is directly in ``root`` ('' when none is)."""
    if find_in_folder(root / "csv", kaggle_jpeg.DICOM_INFO) is not None:
        return kaggle_jpeg.LAYOUT
    if find_in_folder(root, folder.LABELS) is not None:
        return roi.LAYOUT if roi.looks_like_roi_patches(root) else folder.LAYOUT
    for layout, looks_like in (
        (mias.LAYOUT, mias.looks_like_mias),
        (inbreast.LAYOUT, inbreast.looks_like_inbreast),
        (vindr.LAYOUT, vindr.looks_like_vindr),
        (rsna.LAYOUT, rsna.looks_like_rsna),
    ):
        if looks_like(root):
            return layout
    return ""


def _hint(root: Path, has_csv: bool, has_dicom: bool) -> str:
    """What was found instead, to make the 'no layout' error actionable."""
    nested = sorted(child for child in root.iterdir() if child.is_dir() and _marker_layout(child))
    if nested:
        return f"; did you mean {nested[0]} (it looks like {_marker_layout(nested[0])})?"
    if has_csv and not has_dicom:
        return "; found *case_description*.csv but no .dcm file under it"
    return ""


def detect_layout(root: Path) -> str:
    """The layout of ``root`` from its marker files, checked in this order: 'kaggle_jpeg'
    (``csv/dicom_info.csv``), 'roi_patches' (``labels.csv`` with a ``kind`` column), 'image_folder'
    (``labels.csv``), 'mini_mias' (``Info.txt`` + ``mdbNNN.pgm``), 'inbreast' (``INbreast.csv``/``.xls`` +
    ``AllDICOMs/``), 'vindr_mammo' (both annotation CSVs),
    'rsna_screening' (``train.csv`` with RSNA's columns + ``train_images/``), then 'tcia_dicom' (case CSVs
    and .dcm files anywhere below); raise ``ValueError`` when none matches."""
    root = Path(root).expanduser()
    _check_root(root)
    layout = _marker_layout(root)
    if layout:
        return layout
    has_csv, has_dicom = tcia.looks_like_tcia(root)
    if has_csv and has_dicom:
        return tcia.LAYOUT
    raise ValueError(f"cannot tell the layout of {root}: {EXPECTED}{_hint(root, has_csv, has_dicom)}")


def load_dataset(root: Path | str, layout: str = AUTO) -> LoadedDataset:
    """Load the dataset at ``root`` as one catalogue of full mammograms plus the problems met.

    ``layout`` is 'auto' (see :func:`detect_layout`) or one of :data:`LAYOUTS`.
    """
    if layout != AUTO and layout not in LOADERS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join((AUTO, *LAYOUTS))}")
    root = Path(root).expanduser()
    _check_root(root)
    root = root.resolve()
    chosen = detect_layout(root) if layout == AUTO else layout
    loaded = LOADERS[chosen](root)
    summary = problems_summary(loaded.problems, loaded.images)
    if summary:
        progress.warn(summary)
    return loaded
