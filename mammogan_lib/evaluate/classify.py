"""06_svm: ResNet50 features -> linear SVM, tumour vs non-tumour, with and without generated tumours.

The thesis (§3.6, §4.6) trained once on 400 + 400 images and tested once on 100 + 100: a 0.5-point
accuracy difference there is one image. Here every design is repeated over ``repeats`` seeded draws, each
with its own test set, and reported as a mean with a percentile-bootstrap interval over the repeats (inside
[0, 1], as a proportion's interval must be: a t interval over a few repeats is not), plus AUC, sensitivity
and specificity. Tumour test images are always held-out patients the GAN never trained on (02_preprocess).

Designs (per class counts in the training set; the test set is shared by all designs of one draw):

* ``real_only``          train_per_class real tumours + train_per_class non-tumours (thesis experiment 1)
* ``generated_enhanced`` (train_per_class - generated) real + ``generated`` generated tumours (experiment 2)
* ``synthetic_only``     train_per_class generated tumours: does the GAN carry the class on its own?

Where the non-tumours have patients of their own -- the healthy crops of a ``roi_patches`` dataset, cut from
the tumours' own mammograms -- they follow 02's patient split: only the crops of held-out patients are
drawn as test non-tumours, and they never train (:func:`heldout_non_tumours`, ``Pools.non_tumour_test``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammogan_lib.data.datasets import roi, rsna

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
    non_tumour: np.ndarray  # with non_tumour_test: the training non-tumours only
    # held-out patients' non-tumours, the only test non-tumours; None: test ones are drawn from non_tumour
    non_tumour_test: np.ndarray | None = None


@dataclass(frozen=True)
class NonTumourSource:
    name: str  # "other_source" | "same_source"
    root: Path | None
    note: str  # where the folder came from, or why this source is not used


def non_tumour_sources(
    other_root: str, same_root: str, dataset_root: Path | str
) -> tuple[NonTumourSource, ...]:
    """Resolve the two non-tumour folders: the parameters, else the phantom's healthy sets, else (same
    source) the healthy crops of a ``roi_patches`` dataset.

    The other-source set is required (it is the thesis's design) unless the dataset brings a same-source
    set of its own (pre-cut crops): then, without ``non_tumour_root``, it is reported as not run, with the
    reason. The same-source control is skipped, with the reason recorded, when real data come without one.
    A folder may also be the root of an RSNA screening dataset (the thesis's other source): then only its
    ``cancer == 0`` images are used, and the note records the rule and the counts (see :func:`image_files`);
    or of a ``roi_patches`` dataset: then only its healthy crops are used.
    """
    crops = roi.looks_like_roi_patches(Path(dataset_root))
    resolved = {}
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
            elif roi.looks_like_roi_patches(root):
                note += f"; {_crops_note(root)}"
            resolved[name] = NonTumourSource(name, root, note)
            continue
        phantom_set = Path(dataset_root) / PHANTOM_NON_TUMOUR[name]
        if name == "same_source" and crops:  # before the phantom's: crop sets often hold a healthy/ folder
            root = Path(dataset_root)
            resolved[name] = NonTumourSource(
                name, root, f"the dataset's own healthy crops ({parameter} is ''): {_crops_note(root)}"
            )
        elif phantom_set.is_dir() and not crops:
            resolved[name] = NonTumourSource(
                name, phantom_set, f"the phantom's {phantom_set.name}/ ({parameter} is '')"
            )
        else:
            resolved[name] = None
    if resolved["other_source"] is None:
        if resolved["same_source"] is None or not crops:
            raise FileNotFoundError(
                f"parameter 'non_tumour_root' is '' and the dataset {dataset_root} has no "
                f"{PHANTOM_NON_TUMOUR['other_source']}/: 06_svm needs non-tumour images (the thesis used "
                "healthy mammograms from the RSNA dataset)"
            )
        resolved["other_source"] = NonTumourSource(
            "other_source",
            None,
            "not run: non_tumour_root is '' and a roi_patches dataset brings non-tumours from its own source "
            "only (its healthy crops: the same-source set); set non_tumour_root to crops from another source "
            "to run it",
        )
    if resolved["same_source"] is None:
        resolved["same_source"] = NonTumourSource(
            "same_source",
            None,
            "not run: non_tumour_same_source_root is '' and the dataset has no healthy/ set from the "
            "tumours' own source",
        )
    return (resolved["other_source"], resolved["same_source"])


def _crops_note(root: Path) -> str:
    crops = roi.healthy_crops(root)
    return (
        f"roi_patches layout (labels.csv): the {len(crops):,} crops of kind healthy, prepared as 02 prepared "
        "the tumours; lesion crops left out"
    )


def heldout_non_tumours(
    source: NonTumourSource, image_ids: Sequence[str], split: pd.DataFrame
) -> tuple[np.ndarray | None, NonTumourSource]:
    """Which of a source's cached images (``image_ids``: relative to its root) are held-out patients', and the
    source with a note saying so: for a same-source set of ``roi_patches`` healthy crops, whose patients are
    the tumours' (``split``: 02's split.csv, with ``patient_id`` and ``split``). None (and the source as it
    is) for other sets, whose images share no patient with the tumours. A crop whose patient has no tumour
    in the split (no patient id, or no kept lesion) is a training non-tumour: it cannot be a test patient."""
    if source.name != "same_source" or source.root is None or not roi.looks_like_roi_patches(source.root):
        return None, source
    patient_of = roi.healthy_crops(source.root).set_index("image_id")["patient_id"].to_dict()
    heldout = set(split.loc[split["split"] == "heldout", "patient_id"].astype(str))
    mask = np.array([patient_of.get(image_id, "") in heldout for image_id in image_ids], dtype=bool)
    if not mask.any():  # no patient ids (or none held out): no split to follow, any crop may be a test one
        note = (
            f"{source.note}; no healthy crop belongs to a held-out patient (labels.csv gives no patient_id, "
            "or none of theirs was held out), so train and test non-tumours are drawn from all of them"
        )
        return None, dataclasses.replace(source, note=note)
    note = (
        f"{source.note}; follows 02's patient split: the {int(mask.sum()):,} crops of held-out patients are "
        f"the only test non-tumours, the other {int((~mask).sum()):,} train (as do the crops of patients "
        "without a kept lesion or without a patient_id)"
    )
    return mask, dataclasses.replace(source, note=note)


def split_pools(
    tumour_train: np.ndarray,
    tumour_test: np.ndarray,
    generated: np.ndarray,
    non_tumour: np.ndarray,
    heldout: np.ndarray | None = None,
) -> Pools:
    """The :class:`Pools` of one non-tumour source; ``heldout`` (:func:`heldout_non_tumours`) marks the
    non-tumours that may only be test images (None: any may be)."""
    if heldout is None:
        return Pools(tumour_train, tumour_test, generated, non_tumour)
    return Pools(tumour_train, tumour_test, generated, non_tumour[~heldout], non_tumour[heldout])


def image_files(root: Path) -> list[Path]:
    """A folder's images: the ``cancer == 0`` images of an RSNA screening root, the healthy crops of a
    ``roi_patches`` root, those its ``labels.csv`` lists (``file`` column), else every image file below it."""
    if rsna.looks_like_rsna(root):
        return rsna.non_cancer_images(root).files
    if roi.looks_like_roi_patches(root):
        return [Path(path) for path in roi.healthy_crops(root)["path"]]
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
    ]
    if pools.non_tumour_test is None:
        needs.append(
            (
                "svm_train_per_class + svm_test_per_class",
                max(d.non_tumour for d in designs) + test_per_class,
                len(pools.non_tumour),
                "non-tumour images",
            )
        )
    else:
        needs += [
            (
                "svm_test_per_class",
                test_per_class,
                len(pools.non_tumour_test),
                "held-out patients' non-tumour images (02_preprocess holdout_fraction)",
            ),
            (
                "svm_train_per_class",
                max(d.non_tumour for d in designs),
                len(pools.non_tumour),
                "non-tumour images of patients not held out",
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
        if pools.non_tumour_test is None:
            test_non_tumour, train_non_tumour = non_tumour[:test_per_class], non_tumour[test_per_class:]
        else:
            chosen = rng.choice(len(pools.non_tumour_test), test_per_class, replace=False)
            test_non_tumour, train_non_tumour = pools.non_tumour_test[chosen], non_tumour
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


def proportion_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean of per-repeat proportions (accuracy, AUC, ...) and the percentile-bootstrap interval of that mean
    over the repeats (scipy's, seeded): always inside the values' range, so inside [0, 1]. One value, or
    values all equal, give the mean itself."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2 or values.std() == 0:
        return mean, mean, mean
    result = stats.bootstrap(
        (values,), np.mean, confidence_level=confidence, method="percentile", n_resamples=9_999, rng=0
    )
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)


def summarise(results: pd.DataFrame, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per design: mean and interval of each score over repeats (:func:`proportion_interval`), and the
    confusion counts summed over repeats."""
    rows = []
    for design, group in results.groupby("design", sort=False):
        row: dict[str, object] = {"design": design, "repeats": len(group)}
        for score in SCORES:
            mean, low, high = proportion_interval(group[score].to_numpy(), confidence)
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


def run_studies(
    features: Mapping[str, np.ndarray],
    non_tumour_heldout: Mapping[str, np.ndarray | None],
    designs: Sequence[Design],
    test_per_class: int,
    repeats: int,
    c: float,
    seed: int,
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The study for every non-tumour source, in one feature network's features: ``features`` holds
    ``tumour_train``, ``tumour_heldout``, ``generated`` and ``non_tumour_<source>``, and
    ``non_tumour_heldout`` the rows of each source kept for testing (:func:`heldout_non_tumours`). Returns
    every repeat per source and their summary (a row per source and design)."""
    sources = [key.removeprefix("non_tumour_") for key in features if key.startswith("non_tumour_")]
    studies = {
        source: run_study(
            split_pools(
                features["tumour_train"],
                features["tumour_heldout"],
                features["generated"],
                features[f"non_tumour_{source}"],
                non_tumour_heldout.get(source),
            ),
            tuple(designs),
            test_per_class,
            repeats,
            c,
            seed,
        )
        for source in sources
    }
    summary = pd.concat(
        [summarise(study).assign(non_tumour_source=source) for source, study in studies.items()],
        ignore_index=True,
    )
    return studies, summary


def build_results(
    exp_id: str,
    generated_epoch: int,
    networks: Sequence[Any],
    designs: Sequence[Design],
    test_per_class: int,
    repeats: int,
    sources: Sequence[NonTumourSource],
    non_tumour: Mapping[str, np.ndarray],
    skipped: Sequence[Mapping[str, Any]],
    summaries: Mapping[str, pd.DataFrame],
    studies: Mapping[str, Mapping[str, pd.DataFrame]],
    tumour_selection: str,
    left_out: Sequence[Any] = (),
) -> dict[str, Any]:
    """The layout of ``svm.json``, from what 06_svm computed: what the tumour images are (01's selection,
    e.g. 'BI-RADS >= 4 mass (BI-RADS, not pathology)'), the designs, the non-tumour sources (with the images
    each gave and why one was not run), the skipped images with their reasons, the feature networks (the
    lead first; ``resnet50`` also under its own key, as before there were several) and those left out, and
    per network the summary and every repeat under keys carrying its suffix (``summary_effnet_lite0``,
    ``summary_random_resnet50``; ``summaries`` and ``studies`` are keyed by network name)."""
    by_name = {network.name: network for network in networks}
    return {
        "exp_id": exp_id,
        "generated_epoch": generated_epoch,
        "tumour_selection": tumour_selection,
        "feature_networks": {network.name: network.record() for network in networks},
        **({"resnet50": by_name["resnet50"].record()} if "resnet50" in by_name else {}),
        "left_out_networks": [{"name": gone.name, "reason": gone.reason} for gone in left_out],
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
        **{
            key: value
            for network in networks
            for key, value in (
                (f"summary{network.tag}", summaries[network.name].to_dict(orient="records")),
                (
                    f"repeats{network.tag}",
                    {name: study.to_dict(orient="records") for name, study in studies[network.name].items()},
                ),
            )
        },
    }
