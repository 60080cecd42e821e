"""Normalise the label values of every layout to the catalogue's vocabulary.

Each function takes the raw cell and ``where`` (e.g. ``"labels.csv row 3 column 'pathology'"``) and raises
:class:`BadValueError` naming ``where``, the value and what is accepted when the value cannot be used.

Finding types are open: :data:`FINDING_VOCABULARY` lists the types datasets commonly use and how they spell
them; any other value written as words becomes a type of its own (``'Skin lesion'`` -> ``'skin_lesion'``),
so a dataset's findings are kept whatever its vocabulary, and ``abnormalities`` decides which are selected.
A value is *genuinely bad* (an error) when it has no letter (``'3'``, ``'??'``), holds punctuation other
than the separators (``'mass?'``, ``'(see notes)'``), or is a pathology (``'malignant'``: the wrong column).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Most severe first: an image's pathology is the most severe over its findings.
PATHOLOGY_SEVERITY: tuple[str, ...] = ("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK", "NORMAL")
# Listed first, in this order, wherever finding types are listed; every other type follows alphabetically.
FINDING_TYPES: tuple[str, ...] = ("mass", "calcification")
NO_FINDING = "none"
NOT_GIVEN = ""  # a finding whose type the labels do not say
ANY_FINDING_TYPE = "any"  # in ``abnormalities``: every type, also findings whose type is not given (RSNA)
ANY_PATHOLOGY = "any"  # in ``pathology``: every pathology but NORMAL (a finding of any outcome)

# Canonical finding type -> the other ways datasets write it. Case, spaces, hyphens and underscores do not
# matter, nor a plural ending ('masses', 'calcifications', 'asymmetries', 'lymph nodes'), so only genuinely
# different words are listed. CIRC, SPIC, ARCH, ASYM and NORM are mini-MIAS class codes.
FINDING_VOCABULARY: dict[str, tuple[str, ...]] = {
    "mass": ("circumscribed mass", "spiculated mass", "ill-defined mass", "circ", "spic"),
    "calcification": (
        "calc",
        "microcalcification",
        "micro-calcification",
        "calcification cluster",
        "cluster",  # INbreast's ROI name for a calcification cluster
        "suspicious calcification",  # VinDr-Mammo's category
    ),
    "architectural_distortion": ("distortion", "arch"),
    "asymmetry": ("asymmetric density", "asym", "assymetry"),  # misspelt so in some INbreast files
    "focal_asymmetry": ("focal asymmetric density",),
    "global_asymmetry": (),
    "developing_asymmetry": (),
    "lymph_node": ("intramammary lymph node",),
    "suspicious_lymph_node": (),
    "skin_thickening": (),
    "skin_retraction": (),
    "nipple_retraction": (),
    "other": ("misc", "miscellaneous", "other finding"),
    NO_FINDING: ("no finding", "normal", "norm", "healthy", "no abnormality", "nil", "-", "--"),
    NOT_GIVEN: ("n/a", "#n/a", "na", "nan", "null", "unknown", "not given"),
}
# Between the types of one finding-type cell ('mass+calcification', 'mass, calc').
FINDING_TYPE_SEPARATORS = re.compile(r"[+,;&/]")
FINDING_TYPE_EXPECTED = (
    "a finding type in words: 'mass', 'calcification' (or 'calc', 'micro-calcification'), "
    "'architectural distortion', 'asymmetry', 'lymph node', ... or any other (it becomes a type of its own); "
    "'none' (or 'normal', 'no finding', '-') for no finding; several joined with '+'"
)

_PATHOLOGIES: dict[str, str] = {
    "malignant": "MALIGNANT",
    "benign": "BENIGN",
    "benign_without_callback": "BENIGN_WITHOUT_CALLBACK",
    "benign without callback": "BENIGN_WITHOUT_CALLBACK",
    "normal": "NORMAL",
    "healthy": "NORMAL",
}
_LATERALITIES: dict[str, str] = {"": "", "l": "LEFT", "left": "LEFT", "r": "RIGHT", "right": "RIGHT"}
_VIEWS: dict[str, str] = {"": "", "cc": "CC", "mlo": "MLO"}


class BadValueError(ValueError):
    """One label value that cannot be used: where it is, the value, what is wrong, and what is expected.

    ``str()`` reads ``labels.csv row 3 column 'view': 'ML' is not a known view; expected one of ...``;
    :class:`mammogan_lib.data.datasets.tables.BadValues` collects many of them into one message.
    """

    def __init__(self, where: str, value: str, problem: str, expected: str) -> None:
        super().__init__(f"{where}: {value!r} {problem}; expected {expected}")
        self.where, self.value, self.problem, self.expected = where, value, problem, expected


def _collapsed(value: str) -> str:
    return " ".join(str(value).strip().lower().split())


def _lookup(value: str, table: Mapping[str, str], where: str, what: str) -> str:
    key = _collapsed(value)
    if key in table:
        return table[key]
    allowed = ", ".join(repr(k) for k in table)
    problem = "is empty" if not key else f"is not a known {what}"
    raise BadValueError(where, value, problem, f"one of {allowed} (any case)")


def normalise_pathology(value: str, where: str) -> str:
    """'malignant' -> MALIGNANT, 'benign' -> BENIGN, 'normal'/'healthy' -> NORMAL (empty is an error)."""
    return _lookup(value, _PATHOLOGIES, where, "pathology")


def type_key(text: str) -> str:
    """Lower case, apostrophes dropped, runs of spaces, hyphens and underscores as one '_' (not stripped
    of other punctuation: that is for :func:`normalise_finding_type` to judge)."""
    key = _collapsed(text).replace("'", "").replace("\u2019", "")
    return re.sub(r"[\s_-]+", "_", key).strip("_")


def _vocabulary_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for canonical, spellings in FINDING_VOCABULARY.items():
        for spelling in (canonical, *spellings):
            lookup[_collapsed(spelling)] = canonical  # '-' and 'n/a' are matched as written
            if type_key(spelling):
                lookup[type_key(spelling)] = canonical
    return lookup


_TYPE_LOOKUP = _vocabulary_lookup()
_WRONG_COLUMN = {key for key, pathology in _PATHOLOGIES.items() if pathology != "NORMAL"}


def _singular_forms(key: str) -> list[str]:
    """``key`` and what it would be without a plural ending: 'asymmetries' -> [..., 'asymmetry']."""
    forms = [key]
    if key.endswith("ies"):
        forms.append(key[:-3] + "y")
    if key.endswith("es"):
        forms.append(key[:-2])
    if key.endswith("s"):
        forms.append(key[:-1])
    return forms


def normalise_finding_type(value: str, where: str) -> str:
    """One finding type as its canonical name: snake_case, singular for the types of
    :data:`FINDING_VOCABULARY` ('Architectural Distortion' -> 'architectural_distortion', 'calcs' ->
    'calcification', 'No Finding' -> 'none'); any other value in words becomes its own type
    ('Skin Lesion' -> 'skin_lesion'). An empty value, or a marker such as 'n/a', returns '' (type not given).
    Raises :class:`BadValueError` for a value with no letter, with punctuation, or naming a pathology
    (one type per call: :func:`normalise_abnormality` splits 'mass+calcification').
    """
    collapsed = _collapsed(value)
    if collapsed in _TYPE_LOOKUP:
        return _TYPE_LOOKUP[collapsed]
    key = type_key(value)
    for form in _singular_forms(key):
        if form in _TYPE_LOOKUP:
            return _TYPE_LOOKUP[form]
    if key in _WRONG_COLUMN or collapsed in _WRONG_COLUMN:
        problem = "is a pathology, not a finding type (pathology has its own column)"
    elif not any(character.isalpha() for character in key):
        problem = "is not a finding type (it has no letter)"
    elif not re.fullmatch(r"\w+", key):
        problem = "is not a finding type (only letters, digits, spaces, '-', '_' and apostrophes may be used)"
    else:
        return key
    raise BadValueError(where, value, problem, FINDING_TYPE_EXPECTED)


def normalise_abnormality(value: str, where: str) -> list[str]:
    """The finding types of one cell, in :func:`finding_type_order`: ['mass'], ['mass', 'calcification']
    ('mass+calc', 'Mass, Calcifications'), ['architectural_distortion'], ['none'], or [''] (empty: type not
    given). Types may be joined with '+', ',', ';', '&' or '/'. Raises :class:`BadValueError` for a bad
    type (see :func:`normalise_finding_type`) or 'none' combined with a finding."""
    text = str(value).strip()
    parts = [text] if _collapsed(text) in _TYPE_LOOKUP else FINDING_TYPE_SEPARATORS.split(text)
    types = set()
    for part in parts:
        try:
            types.add(normalise_finding_type(part, where))
        except BadValueError as error:
            if len(parts) == 1:
                raise
            problem = f"holds {part.strip()!r}, which {error.problem}"
            raise BadValueError(where, value, problem, FINDING_TYPE_EXPECTED) from None
    if len(types) > 1:
        types.discard(NOT_GIVEN)  # 'mass+' names one type
    if NO_FINDING in types and len(types) > 1:
        raise BadValueError(where, value, "combines 'none' with a finding type", FINDING_TYPE_EXPECTED)
    return sorted(types, key=finding_type_order)


def normalise_laterality(value: str, where: str) -> str:
    """L/R/LEFT/RIGHT (any case) -> LEFT/RIGHT; empty stays ''."""
    return _lookup(value, _LATERALITIES, where, "laterality")


def normalise_view(value: str, where: str) -> str:
    """CC/MLO (any case) -> CC/MLO; empty stays ''."""
    return _lookup(value, _VIEWS, where, "view")


def finding_type_order(finding_type: str) -> tuple[int, str]:
    """Sort key: mass, calcification, then every other type alphabetically."""
    if finding_type in FINDING_TYPES:
        return (FINDING_TYPES.index(finding_type), "")
    return (len(FINDING_TYPES), finding_type)


def most_severe(pathologies: list[str]) -> str:
    """The most severe of ``pathologies`` (MALIGNANT > BENIGN > BENIGN_WITHOUT_CALLBACK > NORMAL)."""
    return min(pathologies, key=PATHOLOGY_SEVERITY.index, default="NORMAL")
