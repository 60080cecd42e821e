"""05_metrics: set-level FID/KID, PSNR/SSIM against the nearest real image, memorisation, texture.

FID and KID are torchmetrics' own computations, fed with features extracted once per image set
(``features.extract_features``) through a pass-through "feature network": one Inception pass serves every
comparison (generated vs train, vs held-out, real vs held-out, every checkpoint). FID is biased upwards at
small N, so N is always reported with it; KID is unbiased and comes with its spread over subsets.

PSNR and SSIM compare two images, so each generated image is compared with its nearest training image
(pixel L2, i.e. the one that maximises PSNR); ``data_range`` is explicit (2.0 for arrays in [-1, 1]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mammogan_lib import files
from mammogan_lib.frameworks import import_torch_side
from mammogan_lib.regularisers import describe_regularisers
from mammogan_lib.runs import RunPaths

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
    """FID between two sets of (N, D) features (torchmetrics ``FrechetInceptionDistance``, float64)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check_features(features_a, features_b, 2)
    metric = FrechetInceptionDistance(feature=_precomputed(features_a.shape[1])).double()
    metric.update(_as_tensor(features_a), real=True)
    metric.update(_as_tensor(features_b), real=False)
    return float(metric.compute())


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


def psnr_ssim(
    images: np.ndarray, references: np.ndarray, data_range: float = DATA_RANGE
) -> tuple[np.ndarray, np.ndarray]:
    """Per-pair PSNR (dB) and SSIM (Gaussian 11x11, sigma 1.5) of (N, R, R) arrays, torchmetrics.

    SSIM is averaged over the pixels whose 11x11 window lies inside the image (5-pixel border excluded),
    as Wang et al.'s reference code and ``skimage.metrics.structural_similarity`` do; torchmetrics' own
    mean also counts the border ring, computed on reflect-padded images, which moves a 64 px image's
    SSIM by ~0.003. The SSIM maps themselves are identical (tests/test_metrics.py).
    """
    torch, _ = import_torch_side()
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    preds = torch.from_numpy(np.asarray(images, dtype=np.float64))[:, None]
    target = torch.from_numpy(np.asarray(references, dtype=np.float64))[:, None]
    psnr = peak_signal_noise_ratio(preds, target, data_range=data_range, reduction="none", dim=(1, 2, 3))
    _, maps = structural_similarity_index_measure(
        preds, target, data_range=data_range, reduction="none", return_full_image=True
    )
    border = SSIM_WINDOW // 2
    ssim = maps[:, 0, border:-border, border:-border].mean(dim=(1, 2))
    return psnr.numpy(), ssim.numpy()


def set_comparisons(
    features: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    tag: str,
    kid_subsets: int,
    kid_subset_size: int,
    seed: int,
) -> pd.DataFrame:
    """FID and KID for each ``(set_a, set_b)`` pair of named feature sets; keys carry ``tag``.

    A pair with fewer than two images on a side gets a row that says why instead of numbers.
    """
    rows = []
    for name_a, name_b in pairs:
        a, b = features[name_a], features[name_b]
        row: dict[str, object] = {"comparison": f"{name_a} vs {name_b}", "n_a": len(a), "n_b": len(b)}
        if min(len(a), len(b)) < 2:
            rows.append(row | {"note": "not computed: fewer than 2 images in a set"})
            continue
        kid = kernel_distance(a, b, kid_subsets, kid_subset_size, seed)
        rows.append(
            row
            | {
                f"fid{tag}": frechet_distance(a, b),
                f"kid{tag}_mean": kid.mean,
                f"kid{tag}_std": kid.std,
                "kid_subset_size": kid.subset_size,
                "note": "",
            }
        )
    return pd.DataFrame(rows)


def nearest_real_scores(images: np.ndarray, real: np.ndarray) -> pd.DataFrame:
    """For each image: its nearest real image (pixel L2), the RMS distance, PSNR and SSIM against it."""
    nearest, distance = nearest_neighbours(images, real)
    psnr, ssim = psnr_ssim(images, real[nearest]) if len(images) else (np.zeros(0), np.zeros(0))
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


def compare_runs(runs_dir: Path, run_ids: Sequence[str]) -> pd.DataFrame:
    """One row per run: its training set-up (train_summary.json) and headline metrics (metrics.json).

    Runs without a metrics.json are listed as not evaluated rather than left out.
    """
    rows = []
    for run_id in dict.fromkeys(run_ids):
        paths = RunPaths(Path(runs_dir) / run_id)
        if not paths.metrics.is_file() or not paths.train_summary.is_file():
            rows.append({"run": run_id, "status": f"not evaluated (no {paths.metrics.name})"})
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
                "epochs": summary.get("epoch"),
                "steps": summary.get("step"),
                "thesis (Table 4.1)": THESIS_VERDICTS.get(params.get("architecture"), ""),
                **files.read_json(paths.metrics)["headline"],
            }
        )
    return pd.DataFrame(rows)


# --- the results file (metrics.json) ---------------------------------------------------------------------


def build_results(
    exp_id: str,
    epoch: int,
    inception: Any,
    set_table: pd.DataFrame,
    generated_scores: pd.DataFrame,
    heldout_scores: pd.DataFrame,
    best: pd.DataFrame,
    audit: MemorisationAudit,
    texture: pd.DataFrame,
    losses_tail: pd.Series,
    curve: pd.DataFrame,
) -> dict[str, Any]:
    """The layout of ``metrics.json``, from what 05_metrics computed.

    ``headline`` holds the numbers a reader (``index.html``, :func:`compare_runs`) shows first, keyed with
    the feature network's suffix (``fid_random_inception`` when the weights were random).
    """
    tag = inception.tag
    by_comparison = set_table.set_index("comparison")
    headline = {
        f"fid{tag}": by_comparison.loc["generated vs train"].get(f"fid{tag}"),
        f"kid{tag}_mean": by_comparison.loc["generated vs train"].get(f"kid{tag}_mean"),
        f"fid{tag}_heldout": by_comparison.loc["generated vs heldout"].get(f"fid{tag}"),
        f"fid{tag}_real_floor": by_comparison.loc["train vs heldout"].get(f"fid{tag}"),
        "n_generated": len(generated_scores),
        "psnr_median": float(generated_scores["psnr"].median()),
        "ssim_median": float(generated_scores["ssim"].median()),
        "memorised_fraction": audit.flagged_fraction,
        "beta_generated": texture.loc["beta median", "generated"],
        "beta_real": texture.loc["beta median", "train"],
    }
    return {
        "exp_id": exp_id,
        "epoch": epoch,
        "inception": inception.record(),
        "headline": headline,
        "sets": set_table.replace({np.nan: None}).to_dict(orient="records"),
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
    }
