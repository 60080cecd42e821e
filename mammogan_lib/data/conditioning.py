"""Class labels for class-conditional generation: one finding type per training image.

**Where the labels come from.** 01_filter's manifest records, for every selected image, the types of the
findings it was selected for (``selected_types``: the findings of the wanted pathology whose type is among
``abnormalities``, joined with '+' in :func:`~mammogan_lib.core.vocabulary.finding_type_order`). The class
vocabulary is therefore 01's own: with the defaults, ``mass`` and ``calcification``; a run that selects
other types (``abnormalities: [mass, architectural_distortion]``) gets those as classes.

**An image holding selected findings of several types** (a malignant mass *and* a malignant calcification
cluster, which CBIS-DDSM has) gets no class: it is left out of conditional training, with the reason
:data:`SEVERAL_TYPES` in 02's labelling record, rather than relabelled. Either label would be half wrong,
and a generator told "mass" for an image whose calcifications are what makes it malignant learns a blend
under that label; a fixed priority (e.g. mass first) would also silently make the calcification class
the images *without* a mass. The unconditional path still trains on these images.

02_preprocess writes each image's class into the run's ``split.csv`` (column ``finding_class``, '' for
none) and the counts into ``preprocess.json`` (``class_labels``); the counts add up to the cached images.
Nothing here imports a deep-learning framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mammogan_lib.core.vocabulary import finding_type_order

CLASS_COLUMN = "finding_class"
"""The column of ``split.csv`` holding each image's class ('' where it has none)."""
SELECTED_TYPES_COLUMN = "selected_types"
"""The manifest column (01_filter) with the types of the findings an image was selected for."""
SEVERAL_TYPES = "selected findings of several types ({types}): no single class"
NO_SELECTED_TYPE = "no selected finding type in the manifest (re-run 01_filter)"
TYPE_SEPARATOR = "+"


def join_types(types: Iterable[str]) -> str:
    """Finding types as one manifest cell: distinct, in finding-type order, joined with '+'."""
    return TYPE_SEPARATOR.join(sorted(set(types), key=finding_type_order))


def image_classes(manifest: pd.DataFrame, image_ids: Sequence[str]) -> pd.DataFrame:
    """``image_id, finding_class, class_reason`` for ``image_ids``: the one selected type of each image,
    or '' and why (several types; none recorded). A manifest without ``selected_types`` (written before
    labels existed) gives every image '' and says to re-run 01."""
    if SELECTED_TYPES_COLUMN in manifest.columns:
        selected = manifest.set_index("image_id")[SELECTED_TYPES_COLUMN].astype(str).to_dict()
    else:
        selected = {}
    rows = []
    for image_id in image_ids:
        types = [t for t in selected.get(image_id, "").split(TYPE_SEPARATOR) if t]
        if len(types) == 1:
            rows.append((image_id, types[0], ""))
        elif types:
            rows.append((image_id, "", SEVERAL_TYPES.format(types=join_types(types))))
        else:
            rows.append((image_id, "", NO_SELECTED_TYPE))
    return pd.DataFrame(rows, columns=["image_id", CLASS_COLUMN, "class_reason"])


def class_vocabulary(class_names: Iterable[str]) -> tuple[str, ...]:
    """The classes present (no ''), in finding-type order (mass, calcification, then alphabetical)."""
    return tuple(sorted({name for name in class_names if name}, key=finding_type_order))


def labelling_record(labels: pd.DataFrame) -> dict[str, Any]:
    """02's account of the labels: images per class, and the unlabelled ones grouped by reason with their
    ids; ``labelled + unlabelled == images``."""
    named = labels[labels[CLASS_COLUMN] != ""]
    unnamed = labels[labels[CLASS_COLUMN] == ""]
    return {
        "classes": list(class_vocabulary(labels[CLASS_COLUMN])),
        "images": len(labels),
        "labelled": len(named),
        "per_class": {
            name: int((named[CLASS_COLUMN] == name).sum()) for name in class_vocabulary(named[CLASS_COLUMN])
        },
        "unlabelled": len(unnamed),
        "unlabelled_by_reason": {
            reason: sorted(group["image_id"].astype(str))
            for reason, group in unnamed.groupby("class_reason", sort=True)
        },
    }


def label_split(split: pd.DataFrame, manifest: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """02's ``split`` table with each image's ``finding_class`` and ``class_reason`` added, and the
    :func:`labelling_record` of its images (both splits)."""
    labels = image_classes(manifest, list(split["image_id"]))
    labelled = split.assign(**{CLASS_COLUMN: labels[CLASS_COLUMN].to_numpy()})
    labelled["class_reason"] = labels["class_reason"].to_numpy()
    return labelled, labelling_record(labels)


@dataclass(frozen=True)
class ClassLabels:
    """The classes of a conditional run and one class index per training image."""

    classes: tuple[str, ...]
    labels: np.ndarray  # int32 (N,), indices into ``classes``

    @classmethod
    def from_names(cls, names: Sequence[str], classes: Sequence[str] | None = None) -> ClassLabels:
        """Labels from class names (every one in ``classes``, default: the names' vocabulary)."""
        vocabulary = tuple(classes) if classes is not None else class_vocabulary(names)
        unknown = sorted({name for name in names if name not in vocabulary})
        if unknown:
            raise ValueError(f"class names {unknown} are not among the classes {list(vocabulary)}")
        if not vocabulary:
            raise ValueError("a conditional run needs at least one class; no image has one")
        index = {name: position for position, name in enumerate(vocabulary)}
        return cls(vocabulary, np.asarray([index[name] for name in names], np.int32))

    @property
    def counts(self) -> list[int]:
        """Training images per class, in ``classes`` order."""
        return [int(v) for v in np.bincount(self.labels, minlength=len(self.classes))]

    @property
    def per_class(self) -> dict[str, int]:
        """Training images per class, by name."""
        return dict(zip(self.classes, self.counts, strict=True))

    @property
    def priors(self) -> np.ndarray:
        """Each class's share of the training images (float64): how generated labels are drawn, so that
        the generator's images, over all classes, are mixed as the real ones are."""
        counts = np.asarray(self.counts, np.float64)
        return counts / counts.sum()


def labelled_training_set(
    images: np.ndarray, rows: pd.DataFrame
) -> tuple[np.ndarray, ClassLabels, pd.DataFrame]:
    """The images of ``rows`` (a split of :func:`mammogan_lib.data.preprocess.load_split_images`) that have a
    class, their :class:`ClassLabels`, and the rows left out (``image_id``, ``class_reason``).

    ``ValueError`` when the split has no ``finding_class`` column (a 02 run from before class labels)."""
    if CLASS_COLUMN not in rows.columns:
        raise ValueError(
            "parameter 'conditional' is true, but split.csv has no finding_class column: re-run "
            "02_preprocess for this experiment (it labels each image with its finding type)"
        )
    names = rows[CLASS_COLUMN].astype(str)
    keep = (names != "").to_numpy()
    left_out = rows.loc[~keep, ["image_id", *(["class_reason"] if "class_reason" in rows else [])]]
    return images[keep], ClassLabels.from_names(list(names[keep])), left_out.reset_index(drop=True)


def class_labels_from_params(params: dict[str, Any]) -> tuple[tuple[str, ...], np.ndarray] | None:
    """A checkpoint's classes and priors (``None`` for an unconditional run)."""
    if not params.get("conditional"):
        return None
    counts = np.asarray(params["class_counts"], np.float64)
    return tuple(params["classes"]), counts / counts.sum()


def draw_classes(count: int, priors: np.ndarray, seed: int) -> np.ndarray:
    """``count`` class indices (int32) drawn with ``priors`` from ``numpy.random.default_rng([seed, 1])``:
    a function of ``seed``, independent of the latents :func:`mammogan_lib.gan.generate.latent_vectors` draws
    from ``default_rng(seed)``."""
    return np.random.default_rng([seed, 1]).choice(len(priors), size=count, p=priors).astype(np.int32)


def image_class_names(rows: pd.DataFrame) -> list[str]:
    """Each image's class in split rows ('' where it has none, or where 02 predates class labels)."""
    if CLASS_COLUMN not in rows.columns:
        return [""] * len(rows)
    return list(rows[CLASS_COLUMN].astype(str))


def generated_of_class(
    images: np.ndarray, image_classes: Sequence[str] | None, wanted: str
) -> tuple[np.ndarray, str]:
    """The generated images of class ``wanted`` ('' = all) and a phrase saying which they are.

    ``ValueError`` naming the parameter ``svm_generated_class`` when the run is unconditional
    (``image_classes`` ``None``) or ``wanted`` is not among its classes."""
    if not wanted:
        return images, "every class" if image_classes is not None else "the unconditional generator's"
    if image_classes is None:
        raise ValueError(
            f"parameter 'svm_generated_class' is {wanted!r}, but this run's generator is unconditional "
            "(its images have no class): set it to '' or use a run with conditional: true"
        )
    present = class_vocabulary(image_classes)
    if wanted not in present:
        raise ValueError(
            f"parameter 'svm_generated_class': {wanted!r} is not a class of this run's generated images "
            f"(classes: {', '.join(present)}; '' = all)"
        )
    return images[np.asarray(image_classes) == wanted], f"class {wanted} only"
