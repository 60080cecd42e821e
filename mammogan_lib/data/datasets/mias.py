"""Layout ``mini_mias``: the mini-MIAS database of mammograms as distributed (322 MLO film scans).

As documented by the Mammographic Image Analysis Society with the database (its ``Info.txt``/README, e.g.
http://peipa.essex.ac.uk/info/mias.html and the copy at https://www.kaggle.com/datasets/kmader/mias-mammography;
Suckling et al., "The Mammographic Image Analysis Society digital mammogram database", Excerpta Medica
International Congress Series 1069, 1994)::

    Info.txt        one line per abnormality (images with several have several lines), space-separated:
                    reference number (mdbNNN), background tissue (F fatty, G fatty-glandular, D dense-
                    glandular), class (CALC, CIRC, SPIC, MISC, ARCH, ASYM, NORM), severity (B/M; absent for
                    NORM), x, y (centre; origin bottom-left) and radius in pixels (absent where calcifications
                    are spread over the breast)
    mdbNNN.pgm      1024 x 1024 8-bit PGM; pairs of films: even numbers the left, odd the right breast of
                    one patient; every view is MLO

Licence: the MIAS licence agreement shipped with the database (free for scientific research; cite the
reference above; no redistribution for profit).

Lines of ``Info.txt`` that do not start with a reference number (title, column notes) are skipped; a line
that does but cannot be read is an error, and all such lines are reported at once. Classes map to the
catalogue's finding types: CALC calcification; CIRC, SPIC, MISC mass, with the MIAS descriptor kept as the
mass's margin in CBIS-DDSM's words (CIRCUMSCRIBED, SPICULATED, ILL_DEFINED: in BI-RADS, and in CBIS-DDSM's
``mass margins`` column, these describe the margin); ARCH architectural_distortion; ASYM asymmetry; NORM
none. Severity B/M -> BENIGN/MALIGNANT. Centres and radii are not catalogue columns. A listed image without
its file, and a ``mdb*.pgm`` not listed, are recorded as problems.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

from mammogan_lib.core.vocabulary import NO_FINDING
from mammogan_lib.data.datasets.catalogue import UNLISTED_FILE, Finding, LoadedDataset, Problem, loaded
from mammogan_lib.data.datasets.label_basis import MIAS_SEVERITY
from mammogan_lib.data.datasets.tables import find_in_folder, relative_name

LAYOUT = "mini_mias"
INFO = "Info.txt"
_REFERENCE = re.compile(r"^mdb(\d{3})$", re.IGNORECASE)
_IMAGE_NAME = re.compile(r"^mdb\d{3}\.pgm$", re.IGNORECASE)
# class -> (finding type, mass margin)
CLASSES: dict[str, tuple[str, str]] = {
    "CALC": ("calcification", ""),
    "CIRC": ("mass", "CIRCUMSCRIBED"),
    "SPIC": ("mass", "SPICULATED"),
    "MISC": ("mass", "ILL_DEFINED"),
    "ARCH": ("architectural_distortion", ""),
    "ASYM": ("asymmetry", ""),
    "NORM": (NO_FINDING, ""),
}
SEVERITIES: dict[str, str] = {"B": "BENIGN", "M": "MALIGNANT"}
TISSUES: dict[str, str] = {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}


def looks_like_mias(root: Path) -> bool:
    """``Info.txt`` next to at least one ``mdbNNN.pgm``."""
    if find_in_folder(root, INFO) is None:
        return False
    return any(_IMAGE_NAME.match(path.name) for path in root.iterdir())


def image_files(root: Path) -> dict[str, Path]:
    """'mdb001' -> its ``mdb001.pgm`` anywhere below ``root`` (the first in sorted walk order)."""
    found: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if _IMAGE_NAME.match(name):
                found.setdefault(name[:6].lower(), Path(folder, name))
    return found


def _line_finding(source: str, number: int, tokens: list[str], errors: list[str]) -> Finding | None:
    """The finding of one data line (None, with the reason in ``errors``, when it cannot be read)."""
    where = f"{source} line {number}"
    if "*" in " ".join(tokens):  # a '*NOTE n*' comment ends the fields
        tokens = tokens[: next(i for i, t in enumerate(tokens) if t.startswith("*"))]
    reference = tokens[0].lower()
    if len(tokens) not in (3, 4, 7):
        errors.append(
            f"{where}: {len(tokens)} fields {tokens}; expected reference, tissue, class[, severity[, x, y, "
            "radius]]"
        )
        return None
    tissue, kind = tokens[1].upper(), tokens[2].upper()
    severity = tokens[3].upper() if len(tokens) > 3 else ""
    problems = []
    if tissue not in TISSUES:
        problems.append(f"background tissue {tokens[1]!r} (expected one of {', '.join(TISSUES)})")
    if kind not in CLASSES:
        problems.append(f"class {tokens[2]!r} (expected one of {', '.join(CLASSES)})")
    if kind == "NORM" and severity:
        problems.append(f"severity {tokens[3]!r} on a NORM line (expected none)")
    if kind != "NORM" and kind in CLASSES and severity not in SEVERITIES:
        problems.append(f"severity {severity or '(none)'!r} (expected B or M for class {kind})")
    if len(tokens) == 7 and not all(t.lstrip("-").isdigit() for t in tokens[4:]):
        problems.append(f"x, y, radius {tokens[4:]} (expected whole numbers of pixels)")
    if problems:
        errors.append(f"{where} ({' '.join(tokens)}): " + "; ".join(problems))
        return None
    finding_type, margin = CLASSES[kind]
    image_number = int(_REFERENCE.match(reference).group(1))
    return Finding(
        image_id=reference,
        source=source,
        row=number,
        listed_path=f"{reference}.pgm",
        pathology=SEVERITIES.get(severity, "NORMAL"),
        finding_type=finding_type,
        patient_id=f"mias_{(image_number + 1) // 2:03d}",
        laterality="LEFT" if image_number % 2 == 0 else "RIGHT",
        view="MLO",
        breast_density=TISSUES[tissue],
        mass_margins=margin,
    )


def read_info(path: Path, root: Path) -> list[Finding]:
    """The findings of ``Info.txt`` (finding ids numbered per image in line order; NORM lines have none)."""
    source = relative_name(path, root)
    if not path.is_file():
        raise FileNotFoundError(f"{source} not found (the mini-MIAS layout has {INFO} next to mdbNNN.pgm)")
    errors: list[str] = []
    findings: list[Finding] = []
    counts: dict[str, int] = {}
    for number, line in enumerate(path.read_text(encoding="latin-1").splitlines(), start=1):
        tokens = line.split()
        if not tokens or not _REFERENCE.match(tokens[0]):
            continue
        finding = _line_finding(source, number, tokens, errors)
        if finding is None or finding.finding_type == NO_FINDING:
            findings += [finding] if finding else []
            continue
        counts[finding.image_id] = counts.get(finding.image_id, 0) + 1
        findings.append(dataclasses.replace(finding, finding_id=str(counts[finding.image_id])))
    if errors:
        raise ValueError(
            f"{source}: {len(errors)} lines cannot be read:\n" + "\n".join(f"- {e}" for e in errors)
        )
    if not findings:
        raise ValueError(f"{source} has no line starting with a reference number mdbNNN")
    return findings


def load_mini_mias(root: Path) -> LoadedDataset:
    """Load the mini-MIAS layout rooted at ``root`` (the folder holding ``Info.txt``)."""
    findings = read_info(find_in_folder(root, INFO) or root / INFO, root)
    files = image_files(root)
    attached, problems = [], []
    for finding in findings:
        path = files.get(finding.image_id)
        if path is None:
            reason = f"{finding.listed_path} not found under {root}"
            problems.append(
                Problem(finding.source, finding.row, finding.image_id, finding.listed_path, reason)
            )
            attached.append(finding)
        else:
            attached.append(dataclasses.replace(finding, image_path=str(path)))
    listed = {finding.image_id for finding in findings}
    for reference, path in files.items():
        if reference not in listed:
            reason = f"{path.name} is not listed in {INFO}: no label, not in the catalogue"
            problems.append(
                Problem(relative_name(path, root), "", reference, str(path), reason, UNLISTED_FILE)
            )
    return loaded(attached, problems, LAYOUT, root, MIAS_SEVERITY)
