"""A deterministic mammography phantom in the exact layout of the Kaggle copy of CBIS-DDSM.

:func:`write_phantom` writes, from a seed and in seconds, a synthetic dataset (no patient data) laid out like
``/kaggle/input/cbis-ddsm-breast-cancer-image-dataset/``::

    csv/dicom_info.csv, csv/meta.csv, csv/{mass,calc}_case_description_{train,test}_set.csv
    jpeg/<SeriesInstanceUID>/1-NNN.jpg          full mammograms, lesion crops and ROI masks (one series each)
    healthy/labels.csv + healthy/images/*.png    healthy images, same acquisition style (8-bit)
    healthy_other_source/labels.csv + images/    healthy images from a different "scanner" (16-bit, digital)
    phantom_truth.csv                            ground truth per finding (not part of the Kaggle layout)
    README.txt                                   what this is, the seed and the spec

The quirks of the real data are reproduced on purpose so that loaders, filters and cleaners have real work:
paths ending in a newline, crop and ROI mask told apart only by ``dicom_info.csv`` (their ``000000``/
``000001`` numbers are random), ~5 % of full images without SeriesDescription, several findings per image,
images listed in both the mass and the calcification CSVs, ``breast_density`` versus ``breast density``.

Images (:func:`render_mammogram`) are built from a simple attenuation model: a compressed-breast thickness
profile inside a smooth contour attached to the chest wall, a skin line and subcutaneous fat layer,
fibroglandular tissue from filtered noise with a 1/f^beta power spectrum (beta = 3, the published value for
mammographic anatomical noise) plus strands radiating from the nipple, a pectoral muscle on MLO views, and
lesions (spiculated/irregular or circumscribed masses, pleomorphic or coarse calcifications). A film
characteristic curve maps attenuation to grey levels; burned-in labels, bright scanner borders, grain and
vignetting are added like on digitised film. Geometry is built with the chest wall on the left (a LEFT
breast, as in CBIS-DDSM) and mirrored for RIGHT breasts.

Every random choice comes from ``np.random.default_rng`` generators derived from ``PhantomSpec.seed``: the
same spec gives byte-identical CSVs and identical pixels, whatever the number of worker processes.

Modules: :mod:`.spec` (the vocabulary, CSV columns and the specs), :mod:`.render` (one image from the
attenuation model), :mod:`.dataset` (planning the dataset, rendering it in workers, writing the CSVs and the
folder). The names below are the package's interface.
"""

from mammogan_lib.data.phantom.dataset import (
    ensure_phantom,
    phantom_folder,
    phantom_matches,
    preview_grid_images,
    write_phantom,
)
from mammogan_lib.data.phantom.render import power_law_noise, render_mammogram
from mammogan_lib.data.phantom.spec import README_MARKER, FindingSpec, PhantomSpec, PhantomSummary

__all__ = [
    "README_MARKER",
    "FindingSpec",
    "PhantomSpec",
    "PhantomSummary",
    "ensure_phantom",
    "phantom_folder",
    "phantom_matches",
    "power_law_noise",
    "preview_grid_images",
    "render_mammogram",
    "write_phantom",
]
