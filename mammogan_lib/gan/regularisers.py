"""What a run's small-data regularisers were, in words, from its training parameters (no framework needed).

The regularisers themselves live in the train step (:mod:`mammogan_lib.gan.training`) and the discriminator
(:mod:`mammogan_lib.gan.models.discriminator`); this module only names them for tables, e.g. 05_metrics'
experiment comparison. DiffAugment has its own column there (``augment``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def describe_regularisers(params: Mapping[str, Any]) -> str:
    """``"R1 gamma 10, spectral norm, LeCam 0.1"`` for the regularisers ``params`` switch on, ``"none"``
    without any; a parameter a run's parameters lack (a run from before it existed) was off."""
    used = []
    if params.get("r1_gamma"):
        used.append(f"R1 gamma {params['r1_gamma']:g}")
    if params.get("d_spectral_norm"):
        used.append("spectral norm")
    if params.get("lecam_weight"):
        used.append(f"LeCam {params['lecam_weight']:g}")
    return ", ".join(used) or "none"
