"""06_svm: ResNet50 features -> linear SVM, tumour vs non-tumour, with and without generated tumours.

The thesis (§3.6, §4.6) trained once on 400 + 400 images and tested once on 100 + 100: a 0.5-point
accuracy difference there is one image. Here every design is repeated over ``repeats`` seeded draws, each
with its own test set, and reported as a mean with a t confidence interval, plus AUC, sensitivity and
specificity. Tumour test images are always held-out patients the GAN never trained on (02_preprocess).

Designs (per class counts in the training set; the test set is shared by all designs of one draw):

* ``real_only``          train_per_class real tumours + train_per_class non-tumours (thesis experiment 1)
* ``generated_enhanced`` (train_per_class - generated) real + ``generated`` generated tumours (experiment 2)
* ``synthetic_only``     train_per_class generated tumours: does the GAN carry the class on its own?
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammogan_lib.datasets import rsna

TUMOUR, NON_TUMOUR = 1, 0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom", ".tif", ".tiff", ".pgm", ".bmp")
# The phantom's healthy sets (mammogan_lib/phantom): another "scanner" (the thesis's design) and the
# tumours' own style.
PHANTOM_NON_TUMOUR = {"other_source": "healthy_other_source", "same_source": "healthy"}
CONFUSION = ("tn", "fp", "fn", "tp")
SCORES = ("accuracy", "auc", "sensitivity", "specificity")
CONFIDENCE = 0.95
"""The level of every interval the study reports (over repeats, and Wilson's for one draw)."""


@dataclass(frozen=True)
class Design:
    name: str
    real_tumour: int
    generated_tumour: int
    non_tumour: int


def thesis_designs(train_per_class: int, generated: int) -> tuple[Design, ...]:
    """The thesis's two training sets and the synthetic-only one (see the module doc)."""
    if not 0 <= generated <= train_per_class:
        raise ValueError(
            f"parameter 'svm_generated': {generated} generated tumours cannot replace part of "
            f"svm_train_per_class = {train_per_class} real ones"
        )
    return (
        Design("real_only", train_per_class, 0, train_per_class),
        Design("generated_enhanced", train_per_class - generated, generated, train_per_class),
        Design("synthetic_only", 0, train_per_class, train_per_class),
    )


@dataclass(frozen=True)
class Pools:
    """Feature arrays (N, D) the draws come from."""

    tumour_train: np.ndarray  # real tumours the GAN trained on (may train the classifier)
    tumour_test: np.ndarray  # held-out patients' tumours (the only tumour test images)
    generated: np.ndarray
    non_tumour: np.ndarray


@dataclass(frozen=True)
class NonTumourSource:
    name: str  # "other_source" | "same_source"
    root: Path | None
    note: str  # where the folder came from, or why this source is not used


def non_tumour_sources(
    other_root: str, same_root: str, dataset_root: Path | str
) -> tuple[NonTumourSource, ...]:
    """Resolve the two non-tumour folders: the parameters, else the phantom's healthy sets.

    The other-source set is required (it is the thesis's design); the same-source control is skipped, with
    the reason recorded, when real data come without one. A folder may also be the root of an RSNA
    screening dataset (the thesis's other source): then only its ``cancer == 0`` images are used, and the
    note records the rule and the counts (see :func:`image_files`).
    """
    sources = []
    for name, given, parameter in (
        ("other_source", other_root, "non_tumour_root"),
        ("same_source", same_root, "non_tumour_same_source_root"),
    ):
        if given:
            root = Path(given).expanduser()
            if not root.is_dir():
                raise FileNotFoundError(f"parameter '{parameter}': {root} is not a folder")
            note = f"{parameter}: {root}"
            if rsna.looks_like_rsna(root):
                note += f"; {rsna.non_cancer_images(root).note}"
            sources.append(NonTumourSource(name, root, note))
            continue
        phantom_set = Path(dataset_root) / PHANTOM_NON_TUMOUR[name]
        if phantom_set.is_dir():
            sources.append(
                NonTumourSource(name, phantom_set, f"the phantom's {phantom_set.name}/ ({parameter} is '')")
            )
        elif name == "other_source":
            raise FileNotFoundError(
                f"parameter '{parameter}' is '' and the dataset {dataset_root} has no {phantom_set.name}/: "
                "06_svm needs non-tumour images (the thesis used healthy mammograms from the RSNA dataset)"
            )
        else:
            sources.append(
                NonTumourSource(
                    name,
                    None,
                    f"not run: {parameter} is '' and the dataset has no healthy/ "
                    "set from the tumours' own source",
                )
            )
    return tuple(sources)


def image_files(root: Path) -> list[Path]:
    """A folder's images: the ``cancer == 0`` images of an RSNA screening root, those its ``labels.csv``
    lists (``file`` column), else every image file below it."""
    if rsna.looks_like_rsna(root):
        return rsna.non_cancer_images(root).files
    labels = root / "labels.csv"
    if labels.is_file():
        table = pd.read_csv(labels, dtype=str, keep_default_na=False)
        if "file" not in table.columns:
            raise ValueError(f"{labels}: expected a 'file' column, found {list(table.columns)}")
        return [root / name.strip() for name in table["file"]]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def check_pool_sizes(pools: Pools, designs: tuple[Design, ...], test_per_class: int) -> None:
    """Refuse a study the images cannot fill, naming the parameter and what exists."""
    needs = [
        (
            "svm_test_per_class",
            test_per_class,
            len(pools.tumour_test),
            "held-out tumour images (02_preprocess holdout_fraction)",
        ),
        (
            "svm_train_per_class",
            max(d.real_tumour for d in designs),
            len(pools.tumour_train),
            "real tumour images in the GAN's training split",
        ),
        (
            "svm_train_per_class",
            max(d.generated_tumour for d in designs),
            len(pools.generated),
            "generated images (04_generate generate_count)",
        ),
        (
            "svm_train_per_class + svm_test_per_class",
            max(d.non_tumour for d in designs) + test_per_class,
            len(pools.non_tumour),
            "non-tumour images",
        ),
    ]
    for parameter, needed, available, what in needs:
        if needed > available:
            raise ValueError(f"{parameter} needs {needed} {what}, but only {available} exist")


def svm_pipeline(c: float, seed: int):
    """Standardised features -> linear-kernel SVM (the thesis's classifier; scaling is ours)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(StandardScaler(), SVC(kernel="linear", C=c, random_state=seed))


def evaluate_svm(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    c: float = 1.0,
    seed: int = 0,
) -> dict[str, float]:
    """Fit on train, score on test: accuracy, AUC (SVM decision values), sensitivity, specificity, counts."""
    from sklearn.metrics import confusion_matrix, roc_auc_score

    for labels, which in ((train_y, "training"), (test_y, "test")):
        present = sorted(set(np.asarray(labels).tolist()))
        if present != [NON_TUMOUR, TUMOUR]:
            raise ValueError(
                f"the {which} set holds only class {present} ({len(labels)} images): a tumour vs non-tumour "
                "classifier needs both classes"
            )
    model = svm_pipeline(c, seed).fit(train_x, train_y)
    predicted = model.predict(test_x)
    tn, fp, fn, tp = confusion_matrix(test_y, predicted, labels=[NON_TUMOUR, TUMOUR]).ravel()
    return {
        "accuracy": (tp + tn) / len(test_y),
        "auc": roc_auc_score(test_y, model.decision_function(test_x)),
        "sensitivity": tp / (tp + fn),
        "specificity": tn / (tn + fp),
        "tn": int(tn),
        "fp": int(fp),
        "fn": int(fn),
        "tp": int(tp),
    }


def _labelled(tumour: list[np.ndarray], non_tumour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate([*tumour, non_tumour])
    y = np.concatenate([np.full(sum(len(t) for t in tumour), TUMOUR), np.full(len(non_tumour), NON_TUMOUR)])
    return x, y


def run_study(
    pools: Pools,
    designs: tuple[Design, ...],
    test_per_class: int,
    repeats: int,
    c: float = 1.0,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (repeat, design): the scores and confusion counts on that repeat's test set.

    Within one repeat every design shares the test set and the non-tumour training images, and smaller
    tumour sets are prefixes of larger ones (generated images *replace* real ones, as in the thesis).
    """
    check_pool_sizes(pools, designs, test_per_class)
    rows = []
    for repeat in range(repeats):
        rng = np.random.default_rng([seed, repeat])
        test_tumour = pools.tumour_test[rng.choice(len(pools.tumour_test), test_per_class, replace=False)]
        non_tumour = pools.non_tumour[rng.permutation(len(pools.non_tumour))]
        test_non_tumour, train_non_tumour = non_tumour[:test_per_class], non_tumour[test_per_class:]
        real = pools.tumour_train[rng.permutation(len(pools.tumour_train))]
        generated = pools.generated[rng.permutation(len(pools.generated))]
        test_x, test_y = _labelled([test_tumour], test_non_tumour)
        for design in designs:
            train_x, train_y = _labelled(
                [real[: design.real_tumour], generated[: design.generated_tumour]],
                train_non_tumour[: design.non_tumour],
            )
            scores = evaluate_svm(train_x, train_y, test_x, test_y, c, seed)
            rows.append(
                {
                    "repeat": repeat,
                    "design": design.name,
                    "train_images": len(train_y),
                    "test_images": len(test_y),
                    **scores,
                }
            )
    return pd.DataFrame(rows)


def mean_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and two-sided t confidence interval; the interval is the mean itself for one value."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2 or values.std(ddof=1) == 0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)


def wilson_interval(successes: int, total: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion (e.g. one test set's accuracy)."""
    from scipy import stats

    z = stats.norm.ppf(0.5 + confidence / 2)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return float(centre - half), float(centre + half)


def summarise(results: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per design: mean and CI of each score over repeats, and the confusion counts summed over repeats."""
    rows = []
    for design, group in results.groupby("design", sort=False):
        row: dict[str, object] = {"design": design, "repeats": len(group)}
        for score in SCORES:
            mean, low, high = mean_interval(group[score].to_numpy(), confidence)
            row |= {score: mean, f"{score}_ci_low": low, f"{score}_ci_high": high}
        row |= {name: int(group[name].sum()) for name in CONFUSION}
        rows.append(row)
    return pd.DataFrame(rows)


def confusion_table(row: Mapping[str, int]) -> pd.DataFrame:
    """The thesis's Tables 4.4/4.5 layout: rows actual, columns predicted, non-tumour first."""
    counts = {name: int(row[name]) for name in CONFUSION}
    return pd.DataFrame(
        [[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]],
        index=["Actual non-tumour", "Actual tumour"],
        columns=["Predicted non-tumour", "Predicted tumour"],
    )


def interval_table(summary: pd.DataFrame, index: list[str], tag: str = "") -> pd.DataFrame:
    """Each score as 'mean [low, high]', one row per ``index`` combination; column names carry ``tag``."""
    rows = summary.set_index(index)
    return pd.DataFrame(
        {
            f"{score}{tag}": [
                f"{r[score]:.3f} [{r[score + '_ci_low']:.3f}, {r[score + '_ci_high']:.3f}]"
                for _, r in rows.iterrows()
            ]
            for score in SCORES
        },
        index=rows.index,
    )


# --- the results file (svm.json) --------------------------------------------------------------------------


def build_results(
    exp_id: str,
    generated_epoch: int,
    resnet: Any,
    designs: Sequence[Design],
    test_per_class: int,
    repeats: int,
    sources: Sequence[NonTumourSource],
    non_tumour: Mapping[str, np.ndarray],
    skipped: Sequence[Mapping[str, Any]],
    summary: pd.DataFrame,
    studies: Mapping[str, pd.DataFrame],
    tumour_selection: str,
) -> dict[str, Any]:
    """The layout of ``svm.json``, from what 06_svm computed: what the tumour images are (01's selection,
    e.g. 'BI-RADS >= 4 mass (BI-RADS, not pathology)'), the designs, the non-tumour sources (with the images
    each gave and why one was not run), the skipped images with their reasons, and the summary and every
    repeat under keys carrying the feature network's suffix (``summary_random_resnet50``)."""
    tag = resnet.tag
    return {
        "exp_id": exp_id,
        "generated_epoch": generated_epoch,
        "tumour_selection": tumour_selection,
        "resnet50": resnet.record(),
        "designs": [vars(design) for design in designs],
        "test_per_class": test_per_class,
        "repeats": repeats,
        "confidence": CONFIDENCE,
        "non_tumour_sources": [
            {
                "name": s.name,
                "root": str(s.root) if s.root else None,
                "note": s.note,
                "images": len(non_tumour.get(s.name, [])),
            }
            for s in sources
        ],
        "skipped_non_tumour_images": list(skipped),
        f"summary{tag}": summary.to_dict(orient="records"),
        f"repeats{tag}": {name: study.to_dict(orient="records") for name, study in studies.items()},
    }
