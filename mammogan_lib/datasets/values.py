"""Normalise the label values of every layout to the catalogue's vocabulary.

Each function takes the raw cell and ``where`` (e.g. ``"labels.csv row 3 column 'pathology'"``) and raises
``ValueError`` naming ``where``, the value and the accepted values when the value is unknown.
"""

from __future__ import annotations

from collections.abc import Mapping

# Most severe first: an image's pathology is the most severe over its findings.
PATHOLOGY_SEVERITY: tuple[str, ...] = ("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK", "NORMAL")
# Finding types in the order they are listed in ';'/'+'-joined columns; '' is an unknown type.
FINDING_TYPES: tuple[str, ...] = ("mass", "calcification")
NO_FINDING = "none"

_PATHOLOGIES: dict[str, str] = {
    "malignant": "MALIGNANT",
    "benign": "BENIGN",
    "benign_without_callback": "BENIGN_WITHOUT_CALLBACK",
    "benign without callback": "BENIGN_WITHOUT_CALLBACK",
    "normal": "NORMAL",
    "healthy": "NORMAL",
}
_ABNORMALITIES: dict[str, str] = {
    "mass": "mass",
    "masses": "mass",
    "calcification": "calcification",
    "calcifications": "calcification",
    "calc": "calcification",
    "none": NO_FINDING,
}
_LATERALITIES: dict[str, str] = {"": "", "l": "LEFT", "left": "LEFT", "r": "RIGHT", "right": "RIGHT"}
_VIEWS: dict[str, str] = {"": "", "cc": "CC", "mlo": "MLO"}


def _lookup(value: str, table: Mapping[str, str], where: str) -> str:
    key = " ".join(str(value).strip().lower().split())
    if key in table:
        return table[key]
    allowed = ", ".join(repr(k) for k in table)
    raise ValueError(f"{where}: unknown value {value!r}; expected one of {allowed} (case-insensitive)")


def normalise_pathology(value: str, where: str) -> str:
    """'malignant' -> MALIGNANT, 'benign' -> BENIGN, 'normal'/'healthy' -> NORMAL (empty is an error)."""
    return _lookup(value, _PATHOLOGIES, where)


def normalise_abnormality(value: str, where: str) -> list[str]:
    """The finding types of one label: ['mass'], ['calcification'], ['mass', 'calcification'], ['none'] or
    [''] (empty: type not given). 'mass+calcification' (or 'mass+calc') lists both."""
    text = str(value).strip()
    if not text:
        return [""]
    types = [_lookup(part, _ABNORMALITIES, where) for part in text.split("+")]
    if NO_FINDING in types and len(types) > 1:
        raise ValueError(f"{where}: {value!r} combines 'none' with a finding type")
    return sorted(set(types), key=finding_type_order)


def normalise_laterality(value: str, where: str) -> str:
    """L/R/LEFT/RIGHT (any case) -> LEFT/RIGHT; empty stays ''."""
    return _lookup(value, _LATERALITIES, where)


def normalise_view(value: str, where: str) -> str:
    """CC/MLO (any case) -> CC/MLO; empty stays ''."""
    return _lookup(value, _VIEWS, where)


def finding_type_order(finding_type: str) -> int:
    """Sort key: mass, calcification, then anything else (unknown types)."""
    return FINDING_TYPES.index(finding_type) if finding_type in FINDING_TYPES else len(FINDING_TYPES)


def most_severe(pathologies: list[str]) -> str:
    """The most severe of ``pathologies`` (MALIGNANT > BENIGN > BENIGN_WITHOUT_CALLBACK > NORMAL)."""
    return min(pathologies, key=PATHOLOGY_SEVERITY.index, default="NORMAL")
