"""What a dataset's labels rest on, carried into the catalogue's ``label_basis`` column and every table
built from it, so that a BI-RADS reading is never presented as a pathology result.

BI-RADS assessment categories (ACR BI-RADS Atlas, 5th ed.): 0 incomplete, 1 negative, 2 benign, 3 probably
benign, 4 suspicious (INbreast subdivides 4a/4b/4c), 5 highly suggestive of malignancy, 6 known
biopsy-proven malignancy.
"""

from __future__ import annotations

import re

BIOPSY_PATHOLOGY = "biopsy-confirmed pathology"  # CBIS-DDSM: every finding's pathology was verified
AS_LABELLED = "pathology as labelled (labels.csv)"  # an image folder: whatever its author wrote
MIAS_SEVERITY = "severity as given in Info.txt (B/M)"  # mini-MIAS does not say how severity was established
RSNA_CANCER = "cancer outcome (RSNA cancer column: pathology-confirmed cancer, else none found)"
BIRADS_ONLY = "BI-RADS, not pathology"  # VinDr-Mammo, INbreast: radiologists' assessments only
LABEL_BASES: tuple[str, ...] = (BIOPSY_PATHOLOGY, AS_LABELLED, MIAS_SEVERITY, RSNA_CANCER, BIRADS_ONLY)

_CATEGORY = re.compile(r"^(?:bi-?rads\s*)?([0-6])([a-c]?)$")


def birads_category(value: str, where: str) -> str:
    """The category of 'BI-RADS 4' (VinDr), '4a' (INbreast) or '4': '4'; '' stays ''.

    An unknown value raises ``ValueError`` naming ``where``.
    """
    text = " ".join(str(value).strip().lower().split())
    if not text:
        return ""
    match = _CATEGORY.match(text)
    if match is None:
        raise ValueError(
            f"{where}: unknown BI-RADS value {value!r}; expected 0-6 (optionally 'BI-RADS ' before it and "
            "a/b/c after 4)"
        )
    return match.group(1)
