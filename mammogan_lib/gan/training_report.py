"""A training run in figures for notebook 03 and ``train_summary.json``: the models' sizes, the session's
speed, and where the run stands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.gan import checkpoint as ckpt
from mammogan_lib.gan import distribute
from mammogan_lib.gan.losses import LOSS_KEYS
from mammogan_lib.gan.training import Trainer, minutes_spent


def model_table(trainer: Trainer) -> Any:
    """A table of the two models: parameters, layers and output shape (a ``pandas.DataFrame``)."""
    import pandas as pd

    rows = []
    for name, model in trainer.models.items():
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        rows.append(
            {
                "model": name,
                "trainable parameters": trainable,
                "all parameters (with BatchNorm statistics)": model.count_params(),
                "layers": len(model.layers),
                "output shape": str(model.output_shape),
            }
        )
    return pd.DataFrame(rows).set_index("model")


def session_speed(epoch_seconds: Sequence[float], steps_per_epoch: int, batch_size: int) -> dict[str, Any]:
    """Speed of the epochs trained in this session: median ms/step and images/s.

    The first epoch of a session includes tracing and compiling the step, so it is left out of the median
    when there are others (and reported on its own).
    """
    if not epoch_seconds:
        return {"epochs_trained": 0}
    steady = list(epoch_seconds[1:]) or list(epoch_seconds)
    ms_per_step = 1000 * float(np.median(steady)) / steps_per_epoch
    return {
        "epochs_trained": len(epoch_seconds),
        "first_epoch_s": round(epoch_seconds[0], 2),
        "median_ms_per_step": round(ms_per_step, 2),
        "images_per_s": round(batch_size / ms_per_step * 1000, 1),
        "train_s": round(float(np.sum(epoch_seconds)), 1),
    }


def run_summary(trainer: Trainer, run_dir: Path | str, losses: Any) -> dict[str, Any]:
    """Where a run stands: counters, parameters, checkpoints kept and the last epoch's mean ``losses``
    (the run's ``losses.csv`` as a DataFrame)."""
    last_epoch = {}
    if len(losses):
        last = losses[losses["epoch"] == losses["epoch"].max()]
        last_epoch = {key: round(float(last[key].mean()), 5) for key in LOSS_KEYS}
    return {
        "epoch": trainer.epoch,
        "step": trainer.step,
        "steps_per_epoch": trainer.steps_per_epoch,
        "n_images": trainer.n_images,
        "dtype_policy": trainer.dtype_policy,
        "precision": trainer.precision.as_dict(),
        "replicas": trainer.replicas,
        "devices": distribute.device_names(trainer.strategy),
        "partial": trainer.budget_stop,
        "train_seconds": round(trainer.train_seconds, 1),
        "train_minutes_reached": minutes_spent(trainer),
        "checkpoints": [p.name for p in ckpt.list_checkpoints(run_dir)],
        "last_epoch_losses": last_epoch,
        **({"progressive": trainer.progressive_record()} if trainer.progressive_record() else {}),
        "params": trainer.params(),
    }
