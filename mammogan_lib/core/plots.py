"""Figures shared by the notebooks. Functions return matplotlib Figures; notebooks show and save them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from mammogan_lib.core import files


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    value_range: tuple[float, float] | None = None,
    tile_inches: float = 1.6,
    suptitle: str = "",
) -> Figure:
    """Tile grayscale images; ``value_range`` fixes the display window (e.g. (-1, 1) for training arrays)."""
    count = max(len(images), 1)
    ncols = min(ncols, count)
    nrows = -(-count // ncols)
    aspect = images[0].shape[0] / images[0].shape[1] if len(images) else 1.0
    title_inches = 0.25 if titles is not None else 0.0  # room for each row's titles above its tiles
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(ncols * tile_inches, nrows * (tile_inches * aspect + title_inches) + 0.3),
        squeeze=False,
    )
    vmin, vmax = value_range if value_range else (None, None)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index < len(images):
            ax.imshow(images[index], cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[index], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def shape_confidence_histogram(scores: np.ndarray, threshold: float, bins: int = 40) -> Figure:
    """Distribution of shape confidence with the keep threshold marked."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.hist(scores, bins=bins, range=(0, 1), color="#4c72b0", edgecolor="white")
    ax.axvline(threshold, color="#c44e52", linestyle="--", label=f"threshold {threshold}")
    kept = int(np.sum(scores >= threshold))
    ax.set_xlabel("breast shape confidence")
    ax.set_ylabel("images")
    ax.set_title(f"{kept} of {len(scores)} scored images kept")
    ax.legend()
    fig.tight_layout()
    return fig


def step_funnel(counts: Mapping[str, int], steps: Sequence[str]) -> Figure:
    """Horizontal bars: images remaining after each step."""
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(steps) + 0.8))
    values = [counts[step] for step in steps]
    ax.barh(range(len(steps)), values, color="#55a868")
    ax.set_yticks(range(len(steps)), [step.replace("_", " ") for step in steps])
    ax.invert_yaxis()
    for row, value in enumerate(values):
        ax.text(value, row, f" {value:,}", va="center", fontsize=8)
    ax.set_xlabel("images")
    fig.tight_layout()
    return fig


def real_beside_generated(real: np.ndarray, generated: np.ndarray, count: int = 8) -> Figure:
    """``count`` real images (first row) above ``count`` generated ones (second row), both in [-1, 1] and
    shown in the same grey window, so that a reader compares like with like."""
    count = max(1, min(count, len(real), len(generated)))
    picks = [np.linspace(0, len(images) - 1, count).round().astype(int) for images in (real, generated)]
    tiles = [*real[picks[0]], *generated[picks[1]]]
    titles = [
        "real, held-out patients" if i == 0 else "generated" if i == count else "" for i in range(2 * count)
    ]
    return image_grid(tiles, titles, ncols=count, value_range=(-1, 1), tile_inches=1.8)


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> None:
    """Save ``fig`` whole or not at all (the format follows ``path``'s suffix). Returns nothing, so a cell
    that ends with it leaves no ``Out[]`` value in the executed notebook."""
    files.write_atomically(path, lambda tmp: fig.savefig(tmp, dpi=dpi, bbox_inches="tight"))


LOSS_LABELS = {"d_loss": "D loss", "g_loss": "G loss", "d_real": "D(x)", "d_fake": "D(G(z))"}


def loss_curves(losses: pd.DataFrame, steps_per_epoch: int, smooth_steps: int = 50) -> Figure:
    """Figure 4.1 of the thesis, measured: D and G loss per step (raw, faint) and a rolling mean (solid),
    and beside it mean D(x) and D(G(z)); the x axis is in epochs (``step / steps_per_epoch``)."""
    fig, (ax_loss, ax_prob) = plt.subplots(1, 2, figsize=(11, 3.4))
    epoch = losses["step"] / steps_per_epoch
    window = max(1, min(smooth_steps, len(losses) // 5 or 1))
    for ax, columns in ((ax_loss, ("d_loss", "g_loss")), (ax_prob, ("d_real", "d_fake"))):
        for column, color in zip(columns, ("#4c72b0", "#c44e52"), strict=True):
            ax.plot(epoch, losses[column], color=color, alpha=0.25, linewidth=0.6)
            smooth = losses[column].rolling(window, min_periods=1).mean()
            label = f"{LOSS_LABELS[column]} ({window}-step mean)"
            ax.plot(epoch, smooth, color=color, linewidth=1.5, label=label)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    ax_loss.set_ylabel("binary cross-entropy")
    ax_loss.set_title("losses")
    ax_prob.set_ylabel("mean discriminator output")
    ax_prob.set_ylim(0, 1)
    ax_prob.set_title("D on real and generated images")
    fig.tight_layout()
    return fig


def distributions(
    values: Mapping[str, np.ndarray], xlabel: str, title: str, threshold: float | None = None, bins: int = 30
) -> Figure:
    """Overlaid density histograms of one quantity for several image sets (e.g. generated vs held-out)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    finite = [np.asarray(v)[np.isfinite(v)] for v in values.values()]
    edges = np.histogram_bin_edges(np.concatenate(finite) if finite else np.zeros(1), bins=bins)
    for (name, _), data in zip(values.items(), finite, strict=True):
        ax.hist(data, bins=edges, density=True, alpha=0.5, label=f"{name} (n={len(data)})")
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.3g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def power_spectra(frequencies: np.ndarray, powers: Mapping[str, np.ndarray], title: str) -> Figure:
    """Mean radially averaged power spectrum per image set, log-log, with the 25-75 % band."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, power in powers.items():
        if len(power) == 0:
            continue
        ax.loglog(frequencies, np.median(power, axis=0), label=f"{name} (n={len(power)})")
        ax.fill_between(frequencies, *np.percentile(power, [25, 75], axis=0), alpha=0.2)
    ax.set_xlabel("spatial frequency (cycles / pixel)")
    ax.set_ylabel("power")
    # matplotlib labels a log axis's minor ticks inside one decade as 2×10⁻², 3×10⁻², ...: they collide
    low, high = ax.get_xlim()
    ticks = [tick for tick in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5) if low <= tick <= high]
    ax.set_xticks(ticks, [f"{tick:g}" for tick in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def metric_curves(
    table: pd.DataFrame, x: str, columns: Sequence[str], title: str, per_row: int = 2
) -> Figure:
    """One panel per column of ``table`` against ``x`` (e.g. FID and KID against the checkpoint epoch),
    ``per_row`` panels to a row (one row per feature network for :func:`metrics.curve_columns`)."""
    rows, width = -(-len(columns) // per_row), min(per_row, len(columns))
    fig, axes = plt.subplots(rows, width, figsize=(4.2 * width, 3.2 * rows), squeeze=False)
    for ax in axes.flat[len(columns) :]:
        ax.set_visible(False)
    for ax, column in zip(axes.flat, columns, strict=False):
        ax.plot(table[x], table[column], marker="o")
        ax.set_xlabel(x)
        ax.set_title(column, fontsize=10)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def confusion_matrices(tables: Mapping[str, pd.DataFrame], suptitle: str) -> Figure:
    """Annotated confusion matrices side by side (rows actual, columns predicted)."""
    import seaborn as sns

    fig, axes = plt.subplots(1, len(tables), figsize=(3.4 * len(tables), 3.4), squeeze=False)
    for ax, (title, table) in zip(axes.flat, tables.items(), strict=True):
        # the tables' own labels ("Actual tumour", "Predicted non-tumour") are too long for ticks: the axis
        # says actual or predicted once, each tick the class, written across
        short = table.rename(
            index=lambda label: label.replace("Actual ", ""),
            columns=lambda label: label.replace("Predicted ", ""),
        )
        sns.heatmap(short, annot=True, fmt="d", cmap="Blues", cbar=False, square=True, ax=ax)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_ylabel("actual", fontsize=8)
        ax.tick_params(axis="both", labelsize=8, rotation=0)
        ax.set_title(title, fontsize=9)
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig
