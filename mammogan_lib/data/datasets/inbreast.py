"""Layout ``inbreast``: the INbreast full-field digital mammography database (115 cases, 410 images).

As documented by its authors (Moreira et al., "INbreast: toward a full-field digital mammographic
database", Academic Radiology 19(2):236-248, 2012, doi:10.1016/j.acra.2011.09.014) and as distributed
(``INbreast Release 1.0/``)::

    INbreast.csv    semicolon-separated, one row per image: Patient ID;Patient age;Laterality (L/R);
                    View (CC/MLO);Acquisition date;File Name (a number);ACR (density 1-4);Bi-Rads
                    (1, 2, 3, 4a, 4b, 4c, 5, 6). INbreast.xls holds the same table (plus two summary rows).
    AllDICOMs/<File Name>_<hash>_MG_<L|R>_<CC|ML>_ANON.dcm
    AllXML/<File Name>.xml   lesion contours (an Apple plist): each ROI's ``Name`` is its kind (Mass,
                    Calcification, Cluster, Distortion, Asymmetry, Spiculated Region, ...)

Licence: granted by the INbreast team (Universidade do Porto / INESC TEC) on request, for research only.

**No pathology.** INbreast's labels are BI-RADS assessments per image (biopsy results were not published
with it): every catalogue row has ``pathology`` '' and ``label_basis`` 'BI-RADS, not pathology', the image's
BI-RADS in ``birads`` and in each finding's ``assessments`` entry. Finding types come from the image's
``AllXML`` file (one finding per ROI kind present, named through the shared finding vocabulary,
:func:`~mammogan_lib.core.vocabulary.normalise_finding_type`); without one, an image with BI-RADS 1 has
no finding and any other has one finding of type '' (not given), recorded as a problem. ``INbreast.xls``
alone needs ``xlrd``, which is not installed: the error says to save it as ``INbreast.csv``.
"""

from __future__ import annotations

import plistlib
from pathlib import Path

from mammogan_lib.core.vocabulary import NO_FINDING, normalise_finding_type, normalise_laterality
from mammogan_lib.data.datasets.catalogue import Finding, LoadedDataset, Problem, loaded
from mammogan_lib.data.datasets.label_basis import BIRADS_ONLY, birads_category
from mammogan_lib.data.datasets.tables import find_in_folder, read_table, relative_name, spreadsheet_row

LAYOUT = "inbreast"
LABELS = "INbreast.csv"
SPREADSHEET = "INbreast.xls"
DICOMS = "AllDICOMs"
XMLS = "AllXML"
REQUIRED_COLUMNS: tuple[str, ...] = ("laterality", "view", "file name", "bi-rads")
_VIEWS = {"cc": "CC", "mlo": "MLO", "ml": "MLO"}


def looks_like_inbreast(root: Path) -> bool:
    """``INbreast.csv`` or ``INbreast.xls`` next to ``AllDICOMs/``."""
    has_table = find_in_folder(root, LABELS) is not None or find_in_folder(root, SPREADSHEET) is not None
    return has_table and (root / DICOMS).is_dir()


def label_table(root: Path) -> Path:
    """``INbreast.csv``; a clear error when only the .xls (or neither) is there."""
    path = find_in_folder(root, LABELS)
    if path is not None:
        return path
    if find_in_folder(root, SPREADSHEET) is not None:
        raise FileNotFoundError(
            f"{root / SPREADSHEET} found but not {LABELS}: reading .xls needs the xlrd package, which is not "
            f"installed; save the sheet as {LABELS} (semicolon-separated, as INbreast distributes it)"
        )
    raise FileNotFoundError(f"{LABELS} not found in {root} (the INbreast layout has {LABELS} and {DICOMS}/)")


def dicom_files(root: Path) -> dict[str, Path]:
    """File Name (the leading number) -> its DICOM in ``AllDICOMs/``."""
    folder = root / DICOMS
    found: dict[str, Path] = {}
    for path in sorted(folder.glob("*.dcm")) if folder.is_dir() else []:
        found.setdefault(path.name.split("_", 1)[0], path)
    return found


def patient_of(listed: str, image: Path | None) -> str:
    """The CSV's Patient ID, or -- the public copy says 'removed' -- the patient hash of the file name
    (``<File Name>_<hash>_MG_...``), which all of one woman's images share."""
    if listed and listed.lower() != "removed":
        return listed
    parts = image.name.split("_") if image else []
    return parts[1] if len(parts) > 2 else ""


def roi_types(path: Path) -> list[str]:
    """The finding types of an ``AllXML`` plist, in first-seen order (``ValueError`` if unreadable)."""
    try:
        document = plistlib.loads(path.read_bytes())
    except (plistlib.InvalidFileException, ValueError) as error:
        raise ValueError(f"{path.name} is not a readable plist ({error})") from error
    names = [
        str(roi.get("Name", "")).strip()
        for image in document.get("Images", [])
        for roi in image.get("ROIs", [])
    ]
    types = [normalise_finding_type(name, f"{path.name} ROI name") for name in names if name]
    return list(dict.fromkeys(t for t in types if t))


def load_inbreast(root: Path) -> LoadedDataset:
    """Load the INbreast layout rooted at ``root`` (the folder of ``INbreast.csv`` and ``AllDICOMs/``)."""
    path = label_table(root)
    table = read_table(path, root, REQUIRED_COLUMNS, separator=";")
    files = dicom_files(root)
    errors: list[str] = []
    findings: list[Finding] = []
    problems: list[Problem] = []
    for index, row in enumerate(table.rows):
        name = row["file name"].removesuffix(".0")  # spreadsheets turn the number into a float
        if not name:  # the summary rows under the table
            continue
        try:
            laterality = normalise_laterality(row["laterality"], table.where(index, "laterality"))
            birads = birads_category(row["bi-rads"], table.where(index, "bi-rads"))
        except ValueError as error:
            errors.append(str(error))
            continue
        view = _VIEWS.get(row["view"].strip().lower())
        if view is None:
            errors.append(f"{table.where(index, 'view')}: {row['view']!r} is not CC, MLO or ML")
            continue
        image = files.get(name)
        listed = f"{DICOMS}/{name}_*.dcm"
        if image is None:
            problems.append(
                Problem(table.source, spreadsheet_row(index), name, listed, f"{listed} not found")
            )
        xml = root / XMLS / f"{name}.xml"
        if xml.is_file():
            try:
                types = roi_types(xml)
            except ValueError as error:
                errors.append(f"{relative_name(xml, root)}: {error}")
                continue
        else:
            types = [] if birads == "1" else [""]
            if types:
                reason = f"no {XMLS}/{name}.xml: BI-RADS {birads} image with a finding of unknown type"
                problems.append(Problem(table.source, spreadsheet_row(index), name, listed, reason))
        common = {
            "image_id": name,
            "source": table.source,
            "row": spreadsheet_row(index),
            "listed_path": listed,
            "pathology": "",
            "image_path": str(image) if image else "",
            "patient_id": patient_of(row.get("patient id", ""), image),
            "laterality": laterality,
            "view": view,
            "breast_density": row.get("acr", ""),
            "birads": birads,
        }
        if not types:
            findings.append(Finding(**common, finding_type=NO_FINDING))
        for number, finding_type in enumerate(types, start=1):
            findings.append(
                Finding(**common, finding_type=finding_type, finding_id=str(number), assessment=birads)
            )
    if errors:
        raise ValueError(f"{table.source}: {len(errors)} bad values:\n" + "\n".join(f"- {e}" for e in errors))
    return loaded(findings, problems, LAYOUT, root, BIRADS_ONLY)
