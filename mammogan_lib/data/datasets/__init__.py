"""Dataset loaders: any layout -> one catalogue of full mammograms plus a record of problems.

Layouts: ``kaggle_jpeg`` (the Kaggle JPEG copy of CBIS-DDSM), ``tcia_dicom`` (the original TCIA DICOM
download), ``image_folder`` (any folder with a ``labels.csv``), ``roi_patches`` (pre-cut lesion and healthy
crops: a ``labels.csv`` with a ``kind`` column), ``mini_mias``, ``inbreast``, ``vindr_mammo`` and
``rsna_screening`` (each public dataset as distributed; see its module for the documented layout).
:func:`load_dataset` returns a
:class:`LoadedDataset` whose ``images`` has one row per full mammogram (:data:`CATALOGUE_COLUMNS`) and whose
``problems`` lists every label row, image or file that could not be resolved (:data:`PROBLEM_COLUMNS`).
Nothing is dropped: an image whose file was not found is a catalogue row with ``image_path`` ''. Bad label
values raise one :class:`BadLabelsError` per file, listing every one of them.
"""

from mammogan_lib.data.datasets.catalogue import (
    CATALOGUE_COLUMNS,
    LAYOUTS,
    PROBLEM_COLUMNS,
    LoadedDataset,
    patient_note,
)
from mammogan_lib.data.datasets.loading import detect_layout, load_dataset
from mammogan_lib.data.datasets.tables import BadLabelsError

__all__ = [
    "CATALOGUE_COLUMNS",
    "LAYOUTS",
    "PROBLEM_COLUMNS",
    "BadLabelsError",
    "LoadedDataset",
    "detect_layout",
    "load_dataset",
    "patient_note",
]
