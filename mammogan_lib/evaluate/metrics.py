"""05_metrics: set-level FID/KID, PSNR/SSIM against the nearest real image, memorisation, texture.

KID is torchmetrics' own computation and FID the same formula computed exactly in an N x N form (tested
against scipy's ``sqrtm`` and torchmetrics), both fed with features extracted once per image set
(``features.extract_features``): one Inception pass serves every comparison (generated vs train, vs
held-out, real vs held-out, every checkpoint). FID is biased upwards at small N, so N is always reported
with it; KID is unbiased and comes with its spread over subsets.

Precision and recall (Kynkäänniemi et al. 2019) split quality from diversity with k-NN manifolds; density
and coverage (Naeem et al. 2020) are their outlier-robust successors. All four are computed here from one
pair of distance matrices, with the formulas of the ``prdc`` package (tests/test_metrics.py checks ours
against it), so that a bootstrap can reuse the distances. Every set-level number comes with a 95 %
bootstrap interval over images and the N of both sets, and with the trust warnings that apply to it
(:func:`trust_warnings`): computed, never written by hand.

PSNR and SSIM compare two images, so each generated image is compared with its nearest training image
(pixel L2, i.e. the one that maximises PSNR); ``data_range`` is explicit (2.0 for arrays in [-1, 1]).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

from mammogan_lib.core import files
from mammogan_lib.core.frameworks import import_torch_side
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.gan.regularisers import describe_regularisers

DATA_RANGE = 2.0  # training arrays live in [-1, 1]
SSIM_WINDOW = 11  # the Gaussian window of sigma 1.5 (torchmetrics' and skimage's default)
BREAST_LEVEL = -0.9
# Texture patches are 3/8 of the image side: at 64 px, half-side windows that are 95 % breast exist in only
# ~1 image in 5 (padded, narrow breasts); 3/8 finds one in ~3 of 4 and still leaves 5 frequencies in the band.
PATCH_FRACTION = 0.375  # pixels above this are breast (background is exactly -1 after 02_preprocess)


def _precomputed(dim: int):
    """A torch module that returns its input: lets torchmetrics' FID/KID take features we extracted."""
    torch, _ = import_torch_side()
    module = torch.nn.Identity()
    module.num_features = dim
    return module


def _as_tensor(features: np.ndarray):
    torch, _ = import_torch_side()
    return torch.from_numpy(np.ascontiguousarray(features, dtype=np.float64))


def _check_features(features_a: np.ndarray, features_b: np.ndarray, minimum: int) -> None:
    if features_a.ndim != 2 or features_b.ndim != 2 or features_a.shape[1] != features_b.shape[1]:
        raise ValueError(
            f"expected two (N, D) feature arrays of one D, got {features_a.shape} and {features_b.shape}"
        )
    if min(len(features_a), len(features_b)) < minimum:
        raise ValueError(
            f"need at least {minimum} images in each set, got {len(features_a)} and {len(features_b)}"
        )


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID of two (N, D) feature sets: ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)), in float64.

    tr((S_a S_b)^(1/2)) is computed exactly as the nuclear norm of X_a X_b^T / sqrt((N_a - 1)(N_b - 1)), X the
    centred features: the nonzero eigenvalues of S_a S_b are the squared singular values of that N_a x N_b
    matrix. Why not torchmetrics' D x D eigendecomposition: at D = 2,048 it took 79 s per FID on this
    project's 2-core CI machine, which makes a bootstrap (hundreds of FIDs) impossible, while the SVD of a
    few hundred images takes milliseconds; both agree with scipy's ``sqrtm`` (tests/test_metrics.py).
    """
    _check_features(features_a, features_b, 2)
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    scale = np.sqrt((len(a) - 1) * (len(b) - 1))
    cross = centred_a @ centred_b.T if min(len(a), len(b)) <= a.shape[1] else None
    if cross is not None:
        trace_root = np.linalg.svd(cross, compute_uv=False).sum() / scale
    else:  # more images than dimensions: the same trace from the D x D symmetric form
        sigma_a = centred_a.T @ centred_a / (len(a) - 1)
        values, vectors = np.linalg.eigh(sigma_a)
        root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
        sigma_b = centred_b.T @ centred_b / (len(b) - 1)
        trace_root = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ sigma_b @ root_a), 0, None)).sum()
    trace_a = (centred_a**2).sum() / (len(a) - 1)
    trace_b = (centred_b**2).sum() / (len(b) - 1)
    return float(((a.mean(axis=0) - b.mean(axis=0)) ** 2).sum() + trace_a + trace_b - 2 * trace_root)


@dataclass(frozen=True)
class KernelDistance:
    mean: float
    std: float  # over subsets
    subset_size: int
    subsets: int


def kernel_distance(
    features_a: np.ndarray, features_b: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> KernelDistance:
    """KID (torchmetrics, cubic polynomial kernel) over seeded subsets of ``min(subset_size, set sizes)``."""
    torch, _ = import_torch_side()
    from torchmetrics.image.kid import KernelInceptionDistance

    _check_features(features_a, features_b, 2)
    size = min(subset_size, len(features_a), len(features_b))
    metric = KernelInceptionDistance(
        feature=_precomputed(features_a.shape[1]), subsets=subsets, subset_size=size
    )
    metric.update(_as_tensor(features_a), real=True)
    metric.update(_as_tensor(features_b), real=False)
    with torch.random.fork_rng():  # the subsets come from torch's global generator
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return KernelDistance(float(mean), float(std), size, subsets)


def nearest_neighbours(
    queries: np.ndarray, references: np.ndarray, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """For each query image, the index of the nearest reference image (pixel L2) and the RMS distance."""
    if len(references) == 0:
        raise ValueError("nearest_neighbours: the reference set is empty")
    ref = references.reshape(len(references), -1).astype(np.float64)
    ref_sq = (ref**2).sum(axis=1)
    indices, distances = [], []
    for start in range(0, len(queries), chunk):
        query = queries[start : start + chunk].reshape(-1, ref.shape[1]).astype(np.float64)
        squared = (query**2).sum(axis=1)[:, None] + ref_sq[None, :] - 2 * query @ ref.T
        nearest = squared.argmin(axis=1)
        indices.append(nearest)
        distances.append(np.sqrt(np.maximum(squared[np.arange(len(query)), nearest], 0) / ref.shape[1]))
    if not indices:
        return np.zeros(0, dtype=int), np.zeros(0)
    return np.concatenate(indices), np.concatenate(distances)


SSIM_CHUNK_BYTES = 256 * 2**20
"""Memory for one chunk of SSIM pairs: torchmetrics convolves five float64 maps per pair, and on CPU the
convolution unfolds each into kernel-size times as many values (400 pairs at 128 px would take 32 GB)."""


def psnr_ssim(
    images: np.ndarray,
    references: np.ndarray,
    data_range: float = DATA_RANGE,
    chunk_bytes: int = SSIM_CHUNK_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair PSNR (dB) and SSIM (Gaussian 11x11, sigma 1.5) of (N, R, R) arrays, torchmetrics.

    SSIM is averaged over the pixels whose 11x11 window lies inside the image (5-pixel border excluded),
    as Wang et al.'s reference code and ``skimage.metrics.structural_similarity`` do; torchmetrics' own
    mean also counts the border ring, computed on reflect-padded images, which moves a 64 px image's
    SSIM by ~0.003. The SSIM maps themselves are identical (tests/test_metrics.py). The pairs are
    computed in chunks of at most ``chunk_bytes`` of working memory.
    """
    torch, _ = import_torch_side()
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    images = np.asarray(images, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    bytes_per_pair = 5 * SSIM_WINDOW**2 * images[0].size * 8 if len(images) else 1
    per_chunk = max(1, chunk_bytes // bytes_per_pair)
    border = SSIM_WINDOW // 2
    psnr, ssim = [], []
    for start in range(0, len(images), per_chunk):
        preds = torch.from_numpy(images[start : start + per_chunk])[:, None]
        target = torch.from_numpy(references[start : start + per_chunk])[:, None]
        psnr.append(
            peak_signal_noise_ratio(preds, target, data_range=data_range, reduction="none", dim=(1, 2, 3))
        )
        _, maps = structural_similarity_index_measure(
            preds, target, data_range=data_range, reduction="none", return_full_image=True
        )
        ssim.append(maps[:, 0, border:-border, border:-border].mean(dim=(1, 2)))
    if not psnr:
        return np.zeros(0), np.zeros(0)
    return torch.cat(psnr).numpy(), torch.cat(ssim).numpy()


CONFIDENCE = 0.95  # of every bootstrap interval


@dataclass(frozen=True)
class ManifoldDistances:
    """Euclidean distances within a candidate set, within a reference set and between them (k-NN metrics).

    The ids name the image behind each row: in a bootstrap sample one image may appear several times, and
    its copies must not count as each other's neighbours (they would shrink its radius to 0 and make every
    k-NN metric look better than the data are).
    """

    candidate_candidate: np.ndarray  # (C, C)
    reference_reference: np.ndarray  # (R, R)
    candidate_reference: np.ndarray  # (C, R)
    candidate_ids: np.ndarray  # (C,)
    reference_ids: np.ndarray  # (R,)

    @classmethod
    def between(cls, candidates: np.ndarray, references: np.ndarray) -> ManifoldDistances:
        return cls(
            cdist(candidates, candidates),
            cdist(references, references),
            cdist(candidates, references),
            np.arange(len(candidates)),
            np.arange(len(references)),
        )

    def resampled(self, candidate_rows: np.ndarray, reference_rows: np.ndarray) -> ManifoldDistances:
        return ManifoldDistances(
            self.candidate_candidate[np.ix_(candidate_rows, candidate_rows)],
            self.reference_reference[np.ix_(reference_rows, reference_rows)],
            self.candidate_reference[np.ix_(candidate_rows, reference_rows)],
            self.candidate_ids[candidate_rows],
            self.reference_ids[reference_rows],
        )


def _kth_neighbour_radii(within: np.ndarray, ids: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest *other* image (copies of itself excluded)."""
    return np.sort(np.where(ids[:, None] == ids[None, :], np.inf, within), axis=1)[:, k - 1]


def precision_recall_density_coverage(distances: ManifoldDistances, k: int) -> dict[str, float]:
    """Precision, recall, density and coverage of candidates against references (``prdc``'s formulas).

    A set's manifold is the union of balls around each of its images reaching that image's k-th nearest
    other image. Precision: share of candidates inside the reference manifold (quality). Recall: share of
    references inside the candidate manifold (diversity). Density: how many reference balls hold each
    candidate, over k (about 1 when the sets match, above 1 when candidates crowd where references are
    dense). Coverage: share of references whose ball holds a candidate (falls when a mode is dropped).
    """
    distinct = min(len(np.unique(distances.candidate_ids)), len(np.unique(distances.reference_ids)))
    if distinct <= k:
        raise ValueError(f"parameter 'prdc_k' ({k}) needs more than k distinct images in each set")
    reference_radii = _kth_neighbour_radii(distances.reference_reference, distances.reference_ids, k)
    candidate_radii = _kth_neighbour_radii(distances.candidate_candidate, distances.candidate_ids, k)
    across = distances.candidate_reference
    in_reference_balls = across < reference_radii[None, :]  # (C, R): candidate c lies in reference r's ball
    return {
        "precision": float(in_reference_balls.any(axis=1).mean()),
        "recall": float((across < candidate_radii[:, None]).any(axis=0).mean()),
        "density": float(in_reference_balls.sum(axis=1).mean() / k),
        "coverage": float((across.min(axis=0) < reference_radii).mean()),
    }


def bootstrap_intervals(
    statistic: Callable[[np.ndarray, np.ndarray], Mapping[str, float]],
    full_sample: Mapping[str, float],
    n_a: int,
    n_b: int,
    repeats: int,
    seed: int,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    confidence: float = CONFIDENCE,
) -> dict[str, tuple[float, float]]:
    """Bootstrap: ``statistic(rows_a, rows_b)`` on ``repeats`` resamples (with replacement) of both sets'
    images; for each statistic, the central ``confidence`` of its resampled values, shifted by their bias
    (their mean minus the ``full_sample`` value) and clipped to its ``bounds``. ``repeats`` 0: none.
    Resamples where the statistic is NaN are left out; a statistic NaN in all of them gets no interval.

    Why shifted: a resample holds only ~63 % distinct images, and FID's small-N bias grows as distinct images
    fall, so the plain percentile interval of FID lies wholly *above* the full-sample FID (measured: at
    N=60, D=8, every resample). The bootstrap's spread is what it estimates well; its location is the
    full-sample value.
    """
    if repeats == 0:
        return {}
    rng = np.random.default_rng(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(repeats):
        values = statistic(rng.integers(0, n_a, n_a), rng.integers(0, n_b, n_b))
        for key, value in values.items():
            samples.setdefault(key, []).append(value)
    tail = (1 - confidence) / 2 * 100
    intervals = {}
    for key, values in samples.items():
        if np.isnan(values).all():  # no resample could compute it (e.g. too few distinct images): no interval
            continue
        bias = np.nanmean(values) - full_sample[key]
        low, high = np.nanpercentile(values, [tail, 100 - tail]) - bias
        floor, ceiling = (bounds or {}).get(key, (-np.inf, np.inf))
        intervals[key] = (float(np.clip(low, floor, ceiling)), float(np.clip(high, floor, ceiling)))
    return intervals


WARNING_SEPARATOR = " | "  # between a comparison's trust warnings in its table cell


def trust_warnings(
    n_a: int,
    n_b: int,
    feature_dim: int,
    pretrained: bool,
    network: str,
    kid_subset_size: int,
    kid_size: int,
    distance_names: tuple[str, str] = ("fid", "kid"),
) -> list[str]:
    """What makes a comparison's numbers untrustworthy, from its N and its features (empty: nothing known)."""
    frechet, kernel = (name.upper() for name in distance_names)
    notes = []
    if not pretrained:
        notes.append(
            f"random-weight {network} features: not {frechet}/{kernel} as published, comparable within this "
            "run only"
        )
    if min(n_a, n_b) < feature_dim:
        notes.append(
            f"{frechet}: N={min(n_a, n_b)} < feature dimension {feature_dim}: the covariance is singular and "
            f"{frechet} is dominated by its small-N bias, so compare it only at equal N"
        )
    if kid_size < kid_subset_size:
        notes.append(f"{kernel}: subset size clipped from {kid_subset_size} to {kid_size} (the smaller set)")
    return notes


def set_comparisons(
    features: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    network: Any,
    kid_subsets: int,
    kid_subset_size: int,
    seed: int,
    prdc_k: int = 5,
    bootstrap_repeats: int = 0,
) -> pd.DataFrame:
    """FID, KID, precision/recall/density/coverage for each ``(candidates, references)`` pair of named
    feature sets, each with its bootstrap interval (``_low``/``_high``), both N and its trust warnings.

    Keys are named after the network (``fid``/``kid`` for InceptionV3, ``fd``/``kd`` otherwise, then
    ``network.tag``: ``fid_random_inception``, ``fd_dinov2``, ``precision_dinov2``).
    A pair too small for a metric gets a note saying why instead of numbers.
    """
    tag = network.tag
    fd, kd = (f"{name}{tag}" for name in network.distance_names)  # fid, kid for Inception; fd_dinov2, ...
    rows = []
    for name_a, name_b in pairs:
        a, b = features[name_a], features[name_b]
        row = _pair_row(network.name, name_a, name_b, a, b)
        if "note" in row:
            rows.append(row)
            continue

        def set_metrics(rows_a: np.ndarray, rows_b: np.ndarray, a=a, b=b) -> dict[str, float]:
            # one KID subset per resample: the repeats average the subset noise, at 1/kid_subsets the cost
            kid = kernel_distance(a[rows_a], b[rows_b], 1, kid_subset_size, seed)
            return {fd: frechet_distance(a[rows_a], b[rows_b]), f"{kd}_mean": kid.mean}

        kid = kernel_distance(a, b, kid_subsets, kid_subset_size, seed)
        values = {fd: frechet_distance(a, b), f"{kd}_mean": kid.mean}
        row |= {f"{kd}_std": kid.std, "kid_subset_size": kid.subset_size}
        intervals = bootstrap_intervals(
            set_metrics, values, len(a), len(b), bootstrap_repeats, seed, {fd: (0, np.inf)}
        )
        notes = trust_warnings(
            len(a),
            len(b),
            a.shape[1],
            network.pretrained,
            network.name,
            kid_subset_size,
            kid.subset_size,
            network.distance_names,
        )
        if min(len(a), len(b)) > prdc_k:
            distances = ManifoldDistances.between(a, b)

            def manifold_metrics(rows_a: np.ndarray, rows_b: np.ndarray, d=distances) -> dict[str, float]:
                resampled = d.resampled(rows_a, rows_b)
                if min(len(np.unique(rows_a)), len(np.unique(rows_b))) <= prdc_k:
                    return dict.fromkeys(("precision", "recall", "density", "coverage"), np.nan)
                return precision_recall_density_coverage(resampled, prdc_k)

            manifold = precision_recall_density_coverage(distances, prdc_k)
            values |= {f"{key}{tag}": value for key, value in manifold.items()}
            bounds = dict.fromkeys(("precision", "recall", "coverage"), (0.0, 1.0)) | {"density": (0, np.inf)}
            manifold_intervals = bootstrap_intervals(
                manifold_metrics, manifold, len(a), len(b), bootstrap_repeats, seed, bounds
            )
            intervals |= {f"{key}{tag}": value for key, value in manifold_intervals.items()}
            if bootstrap_repeats and len(manifold_intervals) < len(manifold):
                notes.append(
                    f"precision/recall/density/coverage: no interval, resamples of N={min(len(a), len(b))} "
                    f"hold no more than prdc_k={prdc_k} distinct images"
                )
        else:
            notes.append(
                "precision/recall/density/coverage: not computed, a set has no more than "
                f"prdc_k={prdc_k} images"
            )
        rows.append(_with_intervals(row, values, intervals, notes))
    return pd.DataFrame(rows)


def _pair_row(features: str, name_a: str, name_b: str, a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """A comparison's row before its numbers: which features and sets, both N; with a ``note`` instead
    when a set is too small for any distance."""
    row: dict[str, Any] = {
        "features": features,
        "comparison": f"{name_a} vs {name_b}",
        "n_a": len(a),
        "n_b": len(b),
    }
    if min(len(a), len(b)) < 2:
        row["note"] = "not computed: fewer than 2 images in a set"
    return row


def _with_intervals(
    row: dict[str, Any],
    values: Mapping[str, float],
    intervals: Mapping[str, tuple[float, float]],
    notes: Sequence[str],
) -> dict[str, Any]:
    """The row with each value, its interval (``_low``/``_high``) where there is one, and its warnings."""
    for key, value in values.items():
        row[key] = value
        if key in intervals:
            row[f"{key}_low"], row[f"{key}_high"] = intervals[key]
    return row | {"warnings": WARNING_SEPARATOR.join(notes), "note": ""}


def set_tables(
    feature_sets: Mapping[str, Mapping[str, np.ndarray]],
    networks: Sequence[Any],
    settings: Mapping[str, Any],
) -> pd.DataFrame:
    """05's set table: :data:`SET_PAIRS` in every network's features (:func:`set_comparisons`) and, where
    ``feature_sets`` has radiomic features under :data:`RADIOMICS`, FRD (:func:`frd_comparisons`).
    ``settings``: ``kid_subsets``, ``kid_subset_size``, ``seed``, ``prdc_k``, ``bootstrap_repeats``."""
    tables = [
        set_comparisons(
            feature_sets[network.name],
            SET_PAIRS,
            network,
            settings["kid_subsets"],
            settings["kid_subset_size"],
            settings["seed"],
            prdc_k=settings["prdc_k"],
            bootstrap_repeats=settings["bootstrap_repeats"],
        )
        for network in networks
    ]
    if RADIOMICS in feature_sets:
        tables.append(
            frd_comparisons(
                feature_sets[RADIOMICS], SET_PAIRS, settings["bootstrap_repeats"], settings["seed"]
            )
        )
    return pd.concat(tables, ignore_index=True)


def equal_n_distance(
    candidates: Mapping[str, np.ndarray],
    reference: np.ndarray,
    repeats: int,
    seed: int,
    distance_key: str,
    distance: Callable[[np.ndarray, np.ndarray], float] = frechet_distance,
) -> pd.DataFrame:
    """``distance(candidates, reference)`` of each candidate set at one N (the smallest candidate set's):
    FID by default, or FRD (:func:`frd_to_reference`).

    A Fréchet distance's small-N bias depends on N, so the generator can be judged against the real-vs-real
    floor only at equal N: every candidate set is subsampled (without replacement) to that N,
    ``max(repeats, 1)`` times; the rows give the mean and the central 95 % of those distances (none for the
    set used whole, whose distance is one number: its spread over images is in the bootstrap interval of
    :func:`set_comparisons`).
    """
    n = min(len(features) for features in candidates.values())
    if n < 2 or len(reference) < 2:
        raise ValueError(
            f"{distance_key} at equal N needs at least 2 images per set, got N={n} and {len(reference)}"
        )
    rng = np.random.default_rng(seed)
    rows = []
    tail = (1 - CONFIDENCE) / 2 * 100
    for name, features in candidates.items():
        subsampled = len(features) > n  # a set used whole has one distance and no interval
        fids = [
            distance(features[rng.choice(len(features), n, replace=False)], reference)
            for _ in range(max(repeats, 1))
        ]
        rows.append(
            {
                "candidates": name,
                "n_candidates": n,
                "n_reference": len(reference),
                f"{distance_key}_equal_n": float(np.mean(fids)),
                f"{distance_key}_equal_n_low": float(np.percentile(fids, tail)) if subsampled else None,
                f"{distance_key}_equal_n_high": float(np.percentile(fids, 100 - tail))
                if subsampled
                else None,
            }
        )
    return pd.DataFrame(rows).set_index("candidates")


def floor_warnings(equal_n: pd.DataFrame, generated: str, real: str, distance_key: str) -> list[str]:
    """What the equal-N comparison says about the floor: below it, or indistinguishable from it."""
    key = f"{distance_key}_equal_n"
    gen, floor = equal_n.loc[generated], equal_n.loc[real]
    if floor[key] > gen[key]:
        return [
            f"the real floor ({real} vs held-out, {distance_key} {floor[key]:.4g}) is worse than the "
            f"generator ({gen[key]:.4g}) at N={int(gen['n_candidates'])}: it cannot rank the generator here"
        ]
    generator_low = (
        gen[key] if pd.isna(gen[f"{key}_low"]) else gen[f"{key}_low"]
    )  # a set used whole: its value
    floor_high = floor[key] if pd.isna(floor[f"{key}_high"]) else floor[f"{key}_high"]
    if generator_low <= floor_high:
        return [
            f"at N={int(gen['n_candidates'])} the generator's interval overlaps the real floor's: "
            f"it is not distinguishable from held-out real images by {distance_key} at this N"
        ]
    return []


# --- the Fréchet Radiomic Distance (FRD v1) on radiomic feature matrices (features: radiomics.py) -------

FRD_KEY = "frd"
RADIOMICS = "radiomics"  # the `features` column of FRD's rows in 05's set table


def normalised_pair(reference: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FRD v1's preparation of two feature matrices, step for step as ``frd-score`` does it: images with a
    NaN feature dropped, float32, every feature z-scored with the *reference* set's mean and standard
    deviation, then features that are not finite in either set dropped."""
    prepared = [np.asarray(m)[~np.isnan(m).any(axis=1)].astype(np.float32) for m in (reference, other)]
    mean, std = np.nanmean(prepared[0], axis=0), np.nanstd(prepared[0], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scored = [(m - mean) / std for m in prepared]
    finite = np.isfinite(scored[0]).all(axis=0) & np.isfinite(scored[1]).all(axis=0)
    return scored[0][:, finite], scored[1][:, finite]


def frechet_radiomic_distance(reference: np.ndarray, other: np.ndarray) -> float:
    """FRD v1 (Konz, Osuala et al. 2026, as ``frd-score`` computes it) of ``other`` against ``reference``:
    log of the squared Fréchet distance of the features z-scored on the reference set. The order matters:
    FRDs compare only when their reference set is the same (see :mod:`mammogan_lib.evaluate.radiomics`)."""
    first, second = normalised_pair(reference, other)
    if min(len(first), len(second)) < 2 or not first.shape[1]:
        return float("nan")
    squared = frechet_distance(first.astype(np.float64), second.astype(np.float64))
    return float(np.log(squared)) if squared > 0 else float("-inf")


def frd_warnings(candidates: np.ndarray, reference: np.ndarray) -> list[str]:
    """FRD's trust warnings: images it leaves out (frd-score drops an image with any feature it could not
    compute, such as a flat image's texture), and, below as many images as features, a singular covariance
    (like FID, biased upwards by an amount that depends on N)."""
    notes = []
    for name, matrix in (("first (real)", reference), ("second", candidates)):
        dropped = int(np.isnan(matrix).any(axis=1).sum())
        if dropped:
            notes.append(
                f"FRD: {dropped} of the {len(matrix)} images of the {name} set have a radiomic feature that "
                "could not be computed (e.g. a flat image has no texture) and are left out, as frd-score does"
            )
    n, feature_count = min(len(candidates), len(reference)), reference.shape[1]
    if n < feature_count:
        notes.append(
            f"FRD: N={n} < {feature_count} radiomic features: the covariance is singular and FRD is "
            "dominated by its small-N bias, so compare it only at equal N"
        )
    return notes


def frd_comparisons(
    features: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    bootstrap_repeats: int,
    seed: int,
) -> pd.DataFrame:
    """FRD for each ``(candidates, reference)`` pair of named radiomic feature matrices, the reference (the
    real set) first inside FRD, with both N, a 95 % bootstrap interval (``frd_low``/``frd_high``) and trust
    warnings: the rows of 05's set table for the radiomic features."""
    rows = []
    for name_a, name_b in pairs:
        candidates, reference = features[name_a], features[name_b]
        row = _pair_row(RADIOMICS, name_a, name_b, candidates, reference)
        if "note" in row:
            rows.append(row)
            continue

        def statistic(rows_a: np.ndarray, rows_b: np.ndarray, a=candidates, b=reference) -> dict[str, float]:
            return {FRD_KEY: frechet_radiomic_distance(b[rows_b], a[rows_a])}

        value = statistic(np.arange(len(candidates)), np.arange(len(reference)))
        intervals = bootstrap_intervals(
            statistic, value, len(candidates), len(reference), bootstrap_repeats, seed
        )
        rows.append(_with_intervals(row, value, intervals, frd_warnings(candidates, reference)))
    return pd.DataFrame(rows)


def frd_to_reference(candidates: np.ndarray, reference: np.ndarray) -> float:
    """FRD in the argument order of the other distances, ``(candidates, reference)``, the reference going
    first inside FRD: the form :func:`equal_n_distance` takes."""
    return frechet_radiomic_distance(reference, candidates)


def nearest_real_scores(images: np.ndarray, real: np.ndarray) -> pd.DataFrame:
    """For each image: its nearest real image (pixel L2), the RMS distance, PSNR and SSIM against it."""
    nearest, distance = nearest_neighbours(images, real)
    psnr, ssim = psnr_ssim(images, real[nearest])
    return pd.DataFrame({"nearest_real": nearest, "rms_distance": distance, "psnr": psnr, "ssim": ssim})


@dataclass(frozen=True)
class MemorisationAudit:
    """Generated images closer to a training image than a ``quantile`` of held-out real images are.

    A held-out image is a new image of the same kind; the generator can only be *closer* to the
    training set than that by copying. A generator that does not copy flags about ``quantile`` of its
    images; much more means memorisation.
    """

    quantile: float
    threshold: float  # RMS pixel distance
    generated_distances: np.ndarray
    heldout_distances: np.ndarray
    flagged: np.ndarray  # indices into the generated set, closest first

    @property
    def flagged_fraction(self) -> float:
        return len(self.flagged) / max(len(self.generated_distances), 1)


def memorisation_audit(
    generated_distances: np.ndarray, heldout_distances: np.ndarray, quantile: float
) -> MemorisationAudit:
    """Flag generated images whose nearest-training distance is below the held-out images' ``quantile``."""
    if len(heldout_distances) == 0:
        raise ValueError(
            "the memorisation audit needs held-out real images (02_preprocess holdout_fraction > 0)"
        )
    threshold = float(np.quantile(heldout_distances, quantile))
    flagged = np.flatnonzero(generated_distances < threshold)
    flagged = flagged[np.argsort(generated_distances[flagged], kind="stable")]
    return MemorisationAudit(quantile, threshold, generated_distances, heldout_distances, flagged)


def tissue_patch(image: np.ndarray, size: int) -> np.ndarray | None:
    """The ``size`` x ``size`` window holding the most breast, if it is at least 95 % breast."""
    breast = (image > BREAST_LEVEL).astype(np.float64)
    integral = np.pad(breast.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    counts = (
        integral[size:, size:] - integral[:-size, size:] - integral[size:, :-size] + integral[:-size, :-size]
    )
    row, col = np.unravel_index(np.argmax(counts), counts.shape)
    if counts[row, col] < 0.95 * size * size:
        return None
    return image[row : row + size, col : col + size]


def radial_power_spectrum(patch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of a square patch (Hann-windowed): frequencies in cycles/pixel."""
    size = patch.shape[0]
    window = np.outer(np.hanning(size), np.hanning(size))
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2((patch - patch.mean()) * window))) ** 2
    y, x = np.indices(spectrum.shape) - size // 2
    radius = np.rint(np.hypot(x, y)).astype(int)
    power = np.bincount(radius.ravel(), spectrum.ravel()) / np.maximum(np.bincount(radius.ravel()), 1)
    radii = np.arange(1, size // 2)
    return radii / size, power[radii]


def spectral_slope(
    frequencies: np.ndarray, power: np.ndarray, band: tuple[float, float] = (0.05, 0.25)
) -> float:
    """beta of P(f) ~ 1/f^beta, a least-squares line in log-log over ``band`` (cycles/pixel)."""
    inside = (frequencies >= band[0]) & (frequencies <= band[1]) & (power > 0)
    if inside.sum() < 3:
        raise ValueError(f"too few frequencies in the band {band} to fit a slope")
    slope, _ = np.polyfit(np.log(frequencies[inside]), np.log(power[inside]), 1)
    return float(-slope)


@dataclass(frozen=True)
class PatchSpectra:
    """The power spectra of a set's tissue patches: one row of ``powers`` per image in ``used``."""

    frequencies: np.ndarray  # cycles / pixel
    powers: np.ndarray  # (len(used), len(frequencies))
    used: np.ndarray  # indices of the images that had a patch
    count: int  # images in the set

    @property
    def betas(self) -> np.ndarray:
        """beta of each image of the set; NaN where it had no patch."""
        betas = np.full(self.count, np.nan)
        betas[self.used] = [spectral_slope(self.frequencies, power) for power in self.powers]
        return betas

    def slope_statistics(self) -> dict[str, float]:
        """How many images had a patch, and the median and interquartile range of their beta."""
        found = self.betas[self.used]
        if not len(found):
            return {"images with a breast patch": 0, "beta median": np.nan, "beta IQR": np.nan}
        low, median, high = np.percentile(found, [25, 50, 75])
        return {"images with a breast patch": len(found), "beta median": median, "beta IQR": high - low}


def patch_spectra(images: np.ndarray, patch_fraction: float = PATCH_FRACTION) -> PatchSpectra:
    """The spectrum of each image's most-breast patch (``patch_fraction`` of the side, >= 95 % breast)."""
    size = max(8, int(images.shape[-1] * patch_fraction))
    frequencies = np.arange(1, size // 2) / size
    powers, used = [], []
    for index, image in enumerate(images):
        patch = tissue_patch(image, size)
        if patch is not None:
            powers.append(radial_power_spectrum(patch)[1])
            used.append(index)
    return PatchSpectra(
        frequencies,
        np.array(powers).reshape(len(powers), len(frequencies)),
        np.array(used, dtype=int),
        len(images),
    )


def spectral_slopes(images: np.ndarray, patch_fraction: float = PATCH_FRACTION) -> np.ndarray:
    """beta of each image's most-breast patch (``patch_fraction`` of the side); NaN if none is 95 % breast."""
    return patch_spectra(images, patch_fraction).betas


# The thesis's Table 4.1 verdicts, by architecture, shown next to measured numbers.
THESIS_VERDICTS = {
    "deep": "exp1: FID 'Poor', visual quality 'Low'",
    "stylegan": "exp2: FID 'Poor', visual quality 'Very Low'",
    "baseline": "exp3: FID 'Improved', visual quality 'Good'",
}


def fingerprint_images(images: np.ndarray) -> dict[str, Any]:
    """N, shape and a SHA-256 of an image set: two runs used the same real set only if these agree."""
    array = np.ascontiguousarray(images)
    digest = hashlib.sha256(str((array.dtype.str, array.shape)).encode() + array.tobytes()).hexdigest()
    return {"n": int(len(array)), "shape": list(array.shape[1:]), "sha256": digest}


def _comparability(reference: Mapping[str, Any], other: Mapping[str, Any]) -> str:
    """'' when two metrics.json files measured against the same real sets, in at least one feature network
    (or FRD) they share, with the same weights in every one they share."""
    if "real_sets" not in other or "real_sets" not in reference:
        return "not compared: its metrics.json predates real-set fingerprints (re-run 05_metrics)"
    if other["real_sets"] != reference["real_sets"]:
        return "not compared: its real train/held-out images differ from this run's"
    same_features = ("pretrained", "key_suffix", "frd_version")
    networks = reference.get("features") or {"inception": reference["inception"]}
    other_networks = other.get("features") or {"inception": other["inception"]}
    # machines differ in the networks they have weights for: runs compare in the networks they share
    common = [name for name in networks if name in other_networks]
    if not common:
        return "not compared: it shares no feature network with this run"
    if any(
        other_networks[name].get(key) != networks[name].get(key) for name in common for key in same_features
    ) or (
        other.get("settings", {}).get("feature_seed") != reference.get("settings", {}).get("feature_seed")
        and not all(networks[name]["pretrained"] for name in common)  # random weights: by seed
    ):
        return "not compared: its feature network differs from this run's"
    return ""


def compare_runs(runs_dir: Path, run_ids: Sequence[str], reference_run: str | None = None) -> pd.DataFrame:
    """One row per run: its training set-up (train_summary.json) and headline metrics (metrics.json).

    Runs without a metrics.json are listed as not evaluated rather than left out. With ``reference_run``,
    a run measured against other real images or other features than that run's is listed with the reason
    instead of numbers: FIDs of different real sets or feature networks cannot be compared.
    """
    reference = None
    if reference_run is not None:
        reference_paths = RunPaths(Path(runs_dir) / reference_run)
        if not reference_paths.metrics.is_file():
            raise ValueError(
                f"compare_runs: the reference run {reference_run!r} has no {reference_paths.metrics}"
            )
        reference = files.read_json(reference_paths.metrics)
    rows = []
    for run_id in dict.fromkeys(run_ids):
        paths = RunPaths(Path(runs_dir) / run_id)
        if not paths.metrics.is_file() or not paths.train_summary.is_file():
            rows.append({"run": run_id, "status": f"not evaluated (no {paths.metrics.name})"})
            continue
        results = files.read_json(paths.metrics)
        problem = _comparability(reference, results) if reference is not None else ""
        if problem:
            rows.append({"run": run_id, "status": problem})
            continue
        summary = files.read_json(paths.train_summary)
        params = summary.get("params", {})
        rows.append(
            {
                "run": run_id,
                "status": "evaluated",
                "architecture": params.get("architecture"),
                "d_dropout": params.get("d_dropout"),
                "augment": params.get("augment_policy") or "none",
                "regularisers": describe_regularisers(params),
                # a progressive run's stages, e.g. "64 -> 128"
                "resolutions": " -> ".join(
                    str(r) for r in params.get("progressive_resolutions") or [params.get("resolution")]
                ),
                "epochs": summary.get("epoch"),
                "steps": summary.get("step"),
                "thesis (Table 4.1)": THESIS_VERDICTS.get(params.get("architecture"), ""),
                **results["headline"],
            }
        )
    return pd.DataFrame(rows)


COMPARISON_SETUP = ("run", "architecture", "augment", "regularisers", "resolutions", "steps")
COMPARISON_STEMS = (
    "{fd}_equal_n",
    "{fd}_floor_ratio",
    "frd_equal_n",
    "frd_gap_to_floor",
    "precision_{net}",
    "recall_{net}",
    "coverage_{net}",
)


def comparison_view(comparison: pd.DataFrame, lead_network: str) -> tuple[pd.DataFrame, list[str]]:
    """What a reader compares across runs: the evaluated runs' set-up and the lead network's distances at
    equal N (with their floor ratio), FRD and precision / recall / coverage — one short row per run — and,
    in words, the runs left out with why (not evaluated, other real images or features)."""
    evaluated = comparison[comparison["status"] == "evaluated"] if len(comparison) else comparison
    fd = f"{'fid' if lead_network == 'inception' else 'fd'}_{lead_network}"
    wanted = [*COMPARISON_SETUP, *(stem.format(fd=fd, net=lead_network) for stem in COMPARISON_STEMS)]
    view = evaluated[[column for column in wanted if column in evaluated.columns]].reset_index(drop=True)
    left_out = [
        f"{row['run']} ({row['status']})" for _, row in comparison.iterrows() if row["status"] != "evaluated"
    ]
    return view, left_out


def checkpoint_curve(
    curve_images: Mapping[int, np.ndarray],
    train_features: Mapping[str, np.ndarray],
    networks: Sequence[Any],
    extract: Callable[[np.ndarray, Any], np.ndarray],
    kid_subsets: int,
    kid_subset_size: int,
    seed: int,
    progress: Callable[..., Iterable[int]] | None = None,
    extract_radiomics: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """Each kept checkpoint's curve images (04) against the real training images, in every feature network:
    one row per epoch with ``n_generated`` and, per network, ``<fd>_vs_train``, ``<kd>_vs_train`` and
    ``<kd>_std`` (``fid_vs_train``, ``fd_dinov2_vs_train``, ...). ``train_features`` is keyed by network
    name; ``extract(images, network)`` makes a checkpoint's features. With ``extract_radiomics`` (images ->
    radiomic feature matrix) and the training images' radiomic features under :data:`RADIOMICS` in
    ``train_features``, also ``frd_vs_train`` (the training images first inside FRD)."""
    epochs: Iterable[int] = sorted(curve_images)
    if progress is not None:
        epochs = progress(epochs, total=len(curve_images))
    rows = []
    for epoch in epochs:
        images = curve_images[epoch]
        row: dict[str, Any] = {"epoch": epoch, "n_generated": len(images)}
        for network in networks:
            generated, train = extract(images, network), train_features[network.name]
            fd, kd = distance_key(network), f"{network.distance_names[1]}{network.tag}"
            kid = kernel_distance(generated, train, kid_subsets, kid_subset_size, seed)
            row |= {
                f"{fd}_vs_train": frechet_distance(generated, train),
                f"{kd}_vs_train": kid.mean,
                f"{kd}_std": kid.std,
            }
        if extract_radiomics is not None:
            train = train_features[RADIOMICS]
            row[f"{FRD_KEY}_vs_train"] = frechet_radiomic_distance(train, extract_radiomics(images))
        rows.append(row)
    return pd.DataFrame(rows)


def curve_columns(networks: Sequence[Any], curve: pd.DataFrame | None = None) -> list[str]:
    """The columns of :func:`checkpoint_curve` a figure shows: each network's two distances, and FRD where
    ``curve`` has it."""
    columns = [f"{name}{network.tag}_vs_train" for network in networks for name in network.distance_names]
    frd = f"{FRD_KEY}_vs_train"
    return columns + ([frd] if curve is not None and frd in curve.columns else [])


# --- the results file (metrics.json) ---------------------------------------------------------------------


def trust_table(set_table: pd.DataFrame, floor_notes: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Every trust warning, one row each, with the comparison and feature network it belongs to."""
    rows = [
        {"comparison": f"{row['comparison']}, {row['features']}", "warning": note}
        for row in set_table.to_dict(orient="records")
        for note in str(row.get("warnings") or "").split(WARNING_SEPARATOR)
        if note
    ] + [
        {"comparison": f"generated and train vs heldout at equal N, {name}", "warning": note}
        for name, notes in floor_notes.items()
        for note in notes
    ]
    return pd.DataFrame(rows, columns=["comparison", "warning"])


def distance_key(network: Any) -> str:
    """The Fréchet distance's key for a network: ``fid``, ``fid_random_inception``, ``fd_dinov2``, ..."""
    return f"{network.distance_names[0]}{network.tag}"


def _interval_entries(row: pd.Series, key: str, name: str | None = None) -> dict[str, Any]:
    """``{name: value, name_low: ..., name_high: ...}`` from a set-table row's ``key`` and its interval."""
    name = name or key
    entries = {name: row.get(key)}
    for end in ("low", "high"):
        if f"{key}_{end}" in row.index:
            entries[f"{name}_{end}"] = row.get(f"{key}_{end}")
    return entries


def _floor_entries(key: str, equal_n: pd.DataFrame) -> dict[str, Any]:
    """The generator and the real floor at equal N against the held-out images, with the generator's
    interval over its draws."""
    generator = equal_n.loc["generated"]
    return {
        f"{key}_equal_n": generator.get(f"{key}_equal_n"),
        f"{key}_equal_n_low": generator.get(f"{key}_equal_n_low"),
        f"{key}_equal_n_high": generator.get(f"{key}_equal_n_high"),
        f"{key}_real_floor_equal_n": equal_n.loc["train", f"{key}_equal_n"],
    }


def floor_ratio(floor: Any, distance: Any) -> float | None:
    """The real floor over the generator's Fréchet distance at equal N (medigan's FID ratio): 1 when the
    generated images are as close to held-out patients as real training images are, towards 0 as they
    fall away. ``None`` where either is missing."""
    if floor is None or distance is None or pd.isna(floor) or pd.isna(distance) or distance <= 0:
        return None
    return float(floor / distance)


def _network_headline(network: Any, set_table: pd.DataFrame, equal_n: pd.DataFrame) -> dict[str, Any]:
    """One network's headline numbers: generated vs train with intervals, vs held-out patients with its
    interval, the real floor, both at equal N, and their ratio ``<fd>_floor_ratio``."""
    tag, fd = network.tag, distance_key(network)
    kd = f"{network.distance_names[1]}{tag}"
    by_comparison = set_table[set_table["features"] == network.name].set_index("comparison")
    versus_train = by_comparison.loc["generated vs train"]
    interval_keys = [
        fd,
        f"{kd}_mean",
        *(f"{name}{tag}" for name in ("precision", "recall", "density", "coverage")),
    ]
    floors = _floor_entries(fd, equal_n)
    return {
        fd: versus_train.get(fd),
        f"{kd}_mean": versus_train.get(f"{kd}_mean"),
        **_interval_entries(by_comparison.loc["generated vs heldout"], fd, f"{fd}_heldout"),
        f"{fd}_real_floor": by_comparison.loc["train vs heldout"].get(fd),
        **floors,
        f"{fd}_floor_ratio": floor_ratio(floors[f"{fd}_real_floor_equal_n"], floors[f"{fd}_equal_n"]),
        **{
            key: versus_train.get(key)
            for base in interval_keys
            for key in (base, f"{base}_low", f"{base}_high")
            if key in versus_train.index
        },
    }


def frd_headline(set_table: pd.DataFrame, equal_n: pd.DataFrame) -> dict[str, Any]:
    """FRD's headline numbers, each computed with the real set first: ``frd`` against the training images,
    ``frd_heldout`` and the floor ``frd_real_floor`` against the held-out patients, both at equal N, and
    ``frd_gap_to_floor`` between those two (log units: a gap of 1 is e times the squared distance)."""
    by_comparison = set_table[set_table["features"] == RADIOMICS].set_index("comparison")
    floors = _floor_entries(FRD_KEY, equal_n)
    generator, floor = floors[f"{FRD_KEY}_equal_n"], floors[f"{FRD_KEY}_real_floor_equal_n"]
    gap = None if generator is None or floor is None or pd.isna(generator) else float(generator - floor)
    return {
        **_interval_entries(by_comparison.loc["generated vs train"], FRD_KEY),
        **_interval_entries(by_comparison.loc["generated vs heldout"], FRD_KEY, f"{FRD_KEY}_heldout"),
        **_interval_entries(by_comparison.loc["train vs heldout"], FRD_KEY, f"{FRD_KEY}_real_floor"),
        **floors,
        f"{FRD_KEY}_gap_to_floor": gap,
    }


def equal_n_tables(
    feature_sets: Mapping[str, Mapping[str, np.ndarray]],
    networks: Sequence[Any],
    repeats: int,
    seed: int,
) -> dict[str, pd.DataFrame]:
    """:func:`equal_n_distance` of the generated and the training images against the held-out ones, in
    each network's features and, where ``feature_sets`` has them, the radiomic ones (FRD, the held-out set
    first inside it): keyed by network name and :data:`RADIOMICS`."""
    distances = [(network.name, distance_key(network), frechet_distance) for network in networks]
    if RADIOMICS in feature_sets:
        distances.append((RADIOMICS, FRD_KEY, frd_to_reference))
    return {
        name: equal_n_distance(
            {"generated": feature_sets[name]["generated"], "train": feature_sets[name]["train"]},
            feature_sets[name]["heldout"],
            repeats,
            seed,
            key,
            distance,
        )
        for name, key, distance in distances
    }


def equal_n_key(table: pd.DataFrame) -> str:
    """The distance an :func:`equal_n_distance` table holds (``fid``, ``fd_effnet_lite0``, ``frd``)."""
    return next(column for column in table.columns if column.endswith("_equal_n"))[: -len("_equal_n")]


SET_PAIRS: tuple[tuple[str, str], ...] = (
    ("generated", "train"),
    ("generated", "heldout"),
    ("train", "heldout"),
)
"""The set-level comparisons 05 makes: generated vs the GAN's training images, vs held-out patients, and the
real-vs-real floor."""
CLASS_TABLE_KEYS: tuple[str, ...] = (
    "n_generated",
    "n_train",
    "n_heldout",
    "psnr_median",
    "ssim_median",
    "memorised_fraction",
    "beta_generated",
    "beta_real",
)


def class_results(
    class_names: Sequence[str],
    labels: Mapping[str, Sequence[str]],
    images: Mapping[str, np.ndarray],
    features_by_network: Mapping[str, Mapping[str, np.ndarray]],
    networks: Sequence[Any],
    settings: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """Every headline metric of 05 once per class of a conditional run: ``{class: headline}``.

    ``labels`` gives each image's class for the sets ``train``, ``heldout`` and ``generated`` (of
    ``images`` and of each network's features, and of the radiomic features under :data:`RADIOMICS` where
    given); each class is measured on its own images alone, as the whole run is (:data:`SET_PAIRS` per
    network and FRD, each distance at equal N, PSNR/SSIM and the memorisation audit
    against that class's training images, texture). ``settings``: ``kid_subsets``, ``kid_subset_size``,
    ``seed``, ``prdc_k``, ``bootstrap_repeats``, ``memorisation_quantile``. A class too small for a metric
    gets ``None`` for it and a note in its ``notes``."""
    results: dict[str, dict[str, Any]] = {}
    for name in class_names:
        rows = {key: np.asarray(values) == name for key, values in labels.items()}
        subset = {key: images[key][rows[key]] for key in images}
        headline: dict[str, Any] = {}
        notes: list[str] = []
        features = {
            network: {key: sets[key][rows[key]] for key in rows}
            for network, sets in features_by_network.items()
        }
        table = set_tables(features, networks, settings)
        notes += [note for note in table.get("note", pd.Series(dtype=str)) if note]
        for network in networks:
            key = distance_key(network)
            equal_n = _class_equal_n(features[network.name], key, frechet_distance, settings, notes)
            headline |= _network_headline(network, table, equal_n)
            if network is networks[0]:
                headline["n_equal"] = equal_n.get("n_candidates", pd.Series({"generated": None}))["generated"]
        if RADIOMICS in features:
            equal_n = _class_equal_n(features[RADIOMICS], FRD_KEY, frd_to_reference, settings, notes)
            headline |= frd_headline(table, equal_n)
            if not networks:
                headline["n_equal"] = equal_n.get("n_candidates", pd.Series({"generated": None}))["generated"]
        generated_scores = nearest_real_scores(subset["generated"], subset["train"])
        heldout_scores = nearest_real_scores(subset["heldout"], subset["train"])
        memorised = None
        if len(subset["heldout"]) and len(subset["generated"]):
            memorised = memorisation_audit(
                generated_scores["rms_distance"].to_numpy(),
                heldout_scores["rms_distance"].to_numpy(),
                settings["memorisation_quantile"],
            ).flagged_fraction
        else:
            notes.append("memorisation audit: no held-out or no generated image of this class")
        slopes = {
            key: patch_spectra(subset[key]).slope_statistics()["beta median"]
            for key in ("generated", "train")
        }
        headline |= {
            "n_generated": len(subset["generated"]),
            "n_train": len(subset["train"]),
            "n_heldout": len(subset["heldout"]),
            "psnr_median": float(generated_scores["psnr"].median()) if len(generated_scores) else None,
            "ssim_median": float(generated_scores["ssim"].median()) if len(generated_scores) else None,
            "memorised_fraction": memorised,
            "beta_generated": slopes["generated"],
            "beta_real": slopes["train"],
            "notes": notes,
        }
        results[name] = {key: _json_number(value) for key, value in headline.items()}
    return results


def _class_equal_n(
    features: Mapping[str, np.ndarray],
    key: str,
    distance: Callable[[np.ndarray, np.ndarray], float],
    settings: Mapping[str, Any],
    notes: list[str],
) -> pd.DataFrame:
    """A class's :func:`equal_n_distance` table; where the class is too small, one of ``None`` and a note."""
    try:
        return equal_n_distance(
            {"generated": features["generated"], "train": features["train"]},
            features["heldout"],
            settings["bootstrap_repeats"],
            settings["seed"],
            key,
            distance,
        )
    except ValueError as error:
        notes.append(str(error))
        return pd.DataFrame({f"{key}_equal_n": [None, None]}, index=["generated", "train"])


def _json_number(value: Any) -> Any:
    """``None`` for NaN (JSON has no NaN), plain floats for numpy scalars, anything else as it is."""
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def class_table(results: Mapping[str, Any], networks: Sequence[Any]) -> pd.DataFrame:
    """One row per class and one for every class together (``all``): FID/KID (vs train, vs held-out, the
    real floor) in each network, FRD where computed, the counts, PSNR/SSIM, memorisation and texture, from
    ``metrics.json``'s ``headline`` and ``per_class``."""
    keys: list[str] = []
    for network in networks:
        fd, kd = distance_key(network), f"{network.distance_names[1]}{network.tag}"
        keys += [fd, f"{fd}_heldout", f"{fd}_real_floor", f"{kd}_mean"]
    if FRD_KEY in results["headline"]:
        keys += [FRD_KEY, f"{FRD_KEY}_heldout", f"{FRD_KEY}_real_floor"]
    keys += list(CLASS_TABLE_KEYS)
    rows = {"all": results["headline"], **results.get("per_class", {})}
    return pd.DataFrame({name: {key: row.get(key) for key in keys} for name, row in rows.items()}).T


def build_results(
    exp_id: str,
    epoch: int,
    networks: Sequence[Any],
    set_table: pd.DataFrame,
    generated_scores: pd.DataFrame,
    heldout_scores: pd.DataFrame,
    best: pd.DataFrame,
    audit: MemorisationAudit,
    texture: pd.DataFrame,
    losses_tail: pd.Series,
    curve: pd.DataFrame,
    *,
    equal_n: Mapping[str, pd.DataFrame],
    floor_notes: Mapping[str, Sequence[str]],
    real_images: Mapping[str, np.ndarray],
    settings: Mapping[str, Any],
    per_class: Mapping[str, Mapping[str, Any]] | None = None,
    radiomics: Mapping[str, Any] | None = None,
    left_out: Sequence[Any] = (),
) -> dict[str, Any]:
    """The layout of ``metrics.json``, from what 05_metrics computed with each feature network and FRD.

    ``set_table`` holds every network's rows and FRD's (column ``features``: a network's name or
    :data:`RADIOMICS`); ``equal_n`` and ``floor_notes`` are keyed the same way; ``radiomics`` is the radiomic
    features' record (:func:`mammogan_lib.evaluate.radiomics.record`) when FRD was computed; ``left_out`` the
    networks
    that did not run, with why (:class:`mammogan_lib.evaluate.features.LeftOut`). ``headline`` holds the
    numbers a
    reader (``index.html``, :func:`compare_runs`) shows first, keyed after the network (``fd_effnet_lite0``,
    ``fid_random_inception`` when the weights were random) or ``frd``, each with its interval
    (``_low``/``_high``) where one was computed and the N of every set. ``features`` lists the networks in
    the order a reader should see them: the first network (the lead), FRD, then the others. ``warnings``
    lists every trust warning with the comparison and network it belongs to; ``real_sets`` fingerprints the
    real images so that :func:`compare_runs` can refuse runs measured against other data. A conditional run
    adds ``per_class``: the headline of each class (:func:`class_results`).
    """
    if not networks and radiomics is None:
        raise ValueError("05 measured nothing: no feature network ran and FRD was off (parameter 'frd')")
    by_name = {network.name: network for network in networks}
    headline: dict[str, Any] = {}
    for network in networks:
        headline |= _network_headline(network, set_table, equal_n[network.name])
    if radiomics is not None:
        headline |= frd_headline(set_table, equal_n[RADIOMICS])
    lead = networks[0].name if networks else RADIOMICS
    headline |= {
        "n_equal": int(equal_n[lead].loc["generated", "n_candidates"]),
        "n_generated": len(generated_scores),
        "n_train": int(real_images["train"].shape[0]),
        "n_heldout": int(real_images["heldout"].shape[0]),
        "psnr_median": float(generated_scores["psnr"].median()),
        "ssim_median": float(generated_scores["ssim"].median()),
        "memorised_fraction": audit.flagged_fraction,
        "beta_generated": texture.loc["beta median", "generated"],
        "beta_real": texture.loc["beta median", "train"],
    }
    headline = {key: (None if isinstance(v, float) and np.isnan(v) else v) for key, v in headline.items()}
    warnings = trust_table(set_table, floor_notes).to_dict(orient="records")
    records = {network.name: network.record() for network in networks}
    if radiomics is not None:
        records = dict([*list(records.items())[:1], (RADIOMICS, dict(radiomics)), *list(records.items())[1:]])
    return {
        "exp_id": exp_id,
        "epoch": epoch,
        **({"inception": by_name["inception"].record()} if "inception" in by_name else {}),
        "features": records,
        "left_out_networks": [{"name": gone.name, "reason": gone.reason} for gone in left_out],
        "settings": dict(settings),
        "real_sets": {name: fingerprint_images(images) for name, images in real_images.items()},
        "headline": headline,
        "warnings": warnings,
        "sets": set_table.replace({np.nan: None}).to_dict(orient="records"),
        "equal_n": [
            {"features": name, **row}
            for name, table in equal_n.items()
            for row in table.reset_index().to_dict(orient="records")
        ],
        "psnr_ssim_top3": best.reset_index(names="generated_index").to_dict(orient="records"),
        "psnr_ssim_distribution": {
            name: scores[["psnr", "ssim"]].describe().to_dict()
            for name, scores in (("generated", generated_scores), ("heldout", heldout_scores))
        },
        "memorisation": {
            "quantile": audit.quantile,
            "threshold": audit.threshold,
            "flagged": audit.flagged.tolist(),
            "flagged_fraction": audit.flagged_fraction,
        },
        "spectral_beta_median": texture.loc["beta median"].to_dict(),
        "losses_last_tenth": losses_tail.to_dict(),
        "curve": curve.to_dict(orient="records"),
        **({"per_class": dict(per_class)} if per_class else {}),
    }
