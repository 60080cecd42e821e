"""The columns of the CBIS-DDSM case-description CSVs, as the real files have them (Kaggle and TCIA copies
alike): the tests' oracle, written out here rather than taken from the code under test."""

MASS_COLUMNS = [
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
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]
CALC_COLUMNS = [
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
    "image file path",
    "cropped image file path",
    "ROI mask file path",
]
