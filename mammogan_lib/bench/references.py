"""What FD (EfficientNet-Lite0) gives for images whose quality is known, on a run's own real images.

``python -m mammogan_lib.bench.references RUN_DIR``: a run folder that has been through 02 (its training
and held-out images, at its resolution). Each reference set is made from the *training* images and measured
like a generator's images in 05: FD in trained ImageNet EfficientNet-Lite0 features, every set drawn to the
training set's N, against the held-out images, the mean and central 95 % over ``--repeats`` draws.

- ``training images``: real images of other patients — the real floor;
- ``Gaussian noise, sigma 20``: the training images with N(0, 20 grey levels) added, clipped;
- ``blurred, sigma 2 px``: the training images under a Gaussian blur of sigma 2 pixels;
- ``flat grey``: one flat image at the training images' mean grey level, repeated.

Where a generator's FD sits among these says more than the number alone (a generator above the flat grey
image is no closer to the real images than a blank square). It needs no GPU and no downloaded weights.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from mammogan_lib.data import preprocess
from mammogan_lib.evaluate import features, metrics

GREY_LEVEL = 2 / 255  # one grey level of 8-bit images in the [-1, 1] scale the run's arrays use


def reference_sets(train: np.ndarray, seed: int = 0) -> dict[str, np.ndarray]:
    """The reference sets, each as many images as ``train`` (floats in [-1, 1])."""
    rng = np.random.default_rng(seed)
    noisy = np.clip(train + rng.normal(0, 20 * GREY_LEVEL, train.shape), -1, 1)
    blurred = np.stack([cv2.GaussianBlur(image, (0, 0), sigmaX=2, sigmaY=2) for image in train])
    flat = np.full_like(train, float(train.mean()))
    return {
        "training images": train,
        "Gaussian noise, sigma 20": noisy.astype(train.dtype),
        "blurred, sigma 2 px": blurred.astype(train.dtype),
        "flat grey": flat,
    }


def reference_table(run_dir: Path, repeats: int = 10, seed: int = 0) -> pd.DataFrame:
    """FD of each reference set against the run's held-out images, at equal N (see the module doc)."""
    train, _ = preprocess.load_split_images(run_dir, "train")
    heldout, _ = preprocess.load_split_images(run_dir, "heldout")
    network = features.load_effnet_lite0()
    reference = features.extract_features(heldout, network)
    candidates = {
        name: features.extract_features(images, network)
        for name, images in reference_sets(train, seed).items()
    }
    table = metrics.equal_n_distance(candidates, reference, repeats, seed, "fd")
    return table.rename_axis("reference set").reset_index()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mammogan_lib.bench.references", description=__doc__)
    parser.add_argument("run_dir", type=Path, help="a run folder that has been through 02_preprocess")
    parser.add_argument("--repeats", type=int, default=10, help="draws of each set at equal N")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    table = reference_table(args.run_dir, args.repeats, args.seed)
    print("| reference set | N vs held-out | FD effnet_lite0 [95 % over draws] |\n|---|---|---|")
    for row in table.itertuples():
        interval = f" [{row.fd_equal_n_low:.1f}, {row.fd_equal_n_high:.1f}]" if row.fd_equal_n_low else ""
        print(f"| {row[1]} | {row.n_candidates} vs {row.n_reference} | {row.fd_equal_n:.1f}{interval} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
