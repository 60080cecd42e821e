"""Progressive training's schedule (:mod:`mammogan_lib.gan.progressive`): its phases — the first stage, then
each later stage's fade and stable part — the fade weight of every step, and each stage's seed.

Plain arithmetic on the settings, so a checkpoint can be placed in its phase without building a trainer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Phase:
    """A stretch of epochs trained with one pair of models: a stage, or a later stage's fade."""

    index: int
    stage: int
    resolution: int
    fading: bool
    first_epoch: int  # 1-based, the phase's first epoch
    last_epoch: int  # inclusive

    @property
    def epochs(self) -> int:
        return self.last_epoch - self.first_epoch + 1


def fade_epochs(stage_epochs: int, fraction: float) -> int:
    """Epochs of a later stage's fade: ``round(fraction * stage_epochs)``, at least 1 when ``fraction`` > 0,
    and at most ``stage_epochs - 1`` so that the stage ends on its grown models alone."""
    if fraction <= 0:
        return 0
    return int(min(stage_epochs - 1, max(1, round(fraction * stage_epochs))))


def plan_phases(resolutions: Sequence[int], stage_epochs: Sequence[int], fade_fraction: float) -> list[Phase]:
    """The run's phases, in order (see the module doc); ``[]`` for an ordinary run."""
    phases: list[Phase] = []
    start = 1
    for stage, (resolution, epochs) in enumerate(zip(resolutions, stage_epochs, strict=True)):
        fade = fade_epochs(epochs, fade_fraction) if stage else 0
        if fade:
            phases.append(Phase(len(phases), stage, resolution, True, start, start + fade - 1))
        phases.append(Phase(len(phases), stage, resolution, False, start + fade, start + epochs - 1))
        start += epochs
    return phases


def settings_phases(settings: Any) -> list[Phase]:
    """:func:`plan_phases` of a :class:`~mammogan_lib.core.config.TrainConfig` (or a checkpoint's params)."""
    get = settings.get if isinstance(settings, Mapping) else lambda key: getattr(settings, key)
    return plan_phases(
        get("progressive_resolutions") or [],
        get("progressive_epochs") or [],
        float(get("progressive_fade_fraction")),
    )


def phase_of_epoch(phases: Sequence[Phase], epoch: int) -> Phase:
    """The phase that trains ``epoch`` (1-based; epoch 0, nothing trained yet, is the first phase's)."""
    for phase in phases:
        if epoch <= phase.last_epoch:
            return phase
    return phases[-1]


def fade_alpha(phase: Phase, step: int, steps_per_epoch: int) -> float:
    """The new block's weight at ``step`` (1-based, the run's global step) of a fading ``phase``: rises
    linearly over the fade's steps, ``1 / fade_steps`` at its first and 1 at its last; 1 outside a fade."""
    if not phase.fading:
        return 1.0
    first_step = (phase.first_epoch - 1) * steps_per_epoch + 1
    fade_steps = phase.epochs * steps_per_epoch
    return float(np.clip((step - first_step + 1) / fade_steps, 0.0, 1.0))


def stage_seed(seed: int, stage: int) -> int:
    """The seed the layers new in ``stage`` are initialised from (``stage`` 0: the run's own ``seed``)."""
    if stage == 0:
        return seed
    return int(np.random.SeedSequence([seed, stage]).generate_state(1)[0] % 2**31)
