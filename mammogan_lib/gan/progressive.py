"""Progressive-resolution training (Karras et al. 2018; thesis 3.5.1: 64 -> 128): schedule, growth, resume.

With ``progressive_resolutions: [64, 128]`` and ``progressive_epochs: [e1, e2]`` (summing to ``epochs``),
training runs ``e1`` epochs at 64 x 64, then grows G and D by one block pair and trains ``e2`` epochs at
128 x 128. Each later stage begins with a **fade**: over its first ``round(progressive_fade_fraction * e)``
epochs the new block's weight ``a`` rises linearly, step by step, from ``1 / fade_steps`` to 1 (ProGAN's
transition); the rest of the stage trains the grown models alone (ProGAN's stabilisation). The default
fraction 0.5 is ProGAN's equal fade and stabilisation phases.

The run is a sequence of **phases** (:class:`~mammogan_lib.gan.schedule.Phase`): the first stage, then for
each later stage its fade
and its stable part. A phase is a fixed pair of models (:mod:`mammogan_lib.gan.models.progressive`); switching
phase happens at an epoch boundary, before the epoch's first step:

- the new models are built (new layers initialised from a seed derived from ``(seed, stage)``, so runs
  repeat), every layer present in both copied over **by name** (weights and BatchNorm statistics), and the
  optimisers rebuilt for the new variables with the Adam moments of every carried variable and the step
  counter copied, so a carried layer keeps training as if nothing had happened;
- the training images become those of the new resolution (02's cache at each resolution);
- the compiled step is rebuilt for the new models (:func:`mammogan_lib.gan.backends.make_step`, unchanged:
  the fade weight is a variable of the models, assigned on the host before each step from the step
  number, :func:`~mammogan_lib.gan.schedule.fade_alpha`, which every backend's step reads as it reads the
  other variables).

A checkpoint holds the models of its phase; ``state.json`` records ``progressive_stage``,
``stage_resolution``, ``fading`` and ``fade_alpha``. A resume builds the models of the checkpoint's phase
and loads them, so it continues exactly, also mid-stage and mid-fade. After the last fade the models are
the ordinary ones: the last stage's checkpoints are ordinary checkpoints. An earlier stage's checkpoint,
loaded for generation (:func:`mammogan_lib.gan.checkpoint.load_generator`), gives its images upsampled to the
run's resolution.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from mammogan_lib.core.frameworks import import_keras
from mammogan_lib.data import conditioning, preprocess
from mammogan_lib.gan import distribute
from mammogan_lib.gan.precision import dtype_policy
from mammogan_lib.gan.schedule import (
    Phase,
    fade_alpha,
    phase_of_epoch,
    settings_phases,
    stage_seed,
)
from mammogan_lib.gan.training import (
    Trainer,
    built_optimizers,
    check_images,
    synchronise_batch_norm,
)

# --- the training images of each stage --------------------------------------------------------------------


def stage_training_images(run_dir: Path | str, settings: Any) -> dict[int, np.ndarray]:
    """The training images at each of ``settings.progressive_resolutions`` (02's caches), in the rows and
    order of the run's training split (with ``conditional``, only the images with a class, as
    :func:`mammogan_lib.data.conditioning.labelled_training_set` keeps them); ``{}`` for an ordinary run."""
    stages: dict[int, np.ndarray] = {}
    reference = None
    for resolution in settings.progressive_resolutions:
        images, rows = preprocess.load_training_images(Path(run_dir), resolution)
        ids = rows["image_id"].tolist()
        if reference is not None and ids != reference:
            raise ValueError(
                f"the training images of resolution {resolution} are not those of the other stages"
            )
        reference = ids
        if settings.conditional:
            images = images[(rows[conditioning.CLASS_COLUMN].astype(str) != "").to_numpy()]
        stages[resolution] = images
    return stages


def stages_fingerprint(stage_images: Mapping[int, np.ndarray], class_labels: Any = None) -> str:
    """A short SHA-256 of every stage's images (and the class labels): what a resume must train on."""
    data = hashlib.sha256()
    for resolution in sorted(stage_images):
        data.update(str(resolution).encode())
        data.update(np.ascontiguousarray(stage_images[resolution]).tobytes())
    if class_labels is not None:
        data.update(json.dumps(class_labels.classes).encode())
        data.update(np.ascontiguousarray(class_labels.labels).tobytes())
    return data.hexdigest()[:16]


# --- growing: weights and optimiser state carried by name ---------------------------------------------------


def carry_weights(source: Any, target: Any) -> list[str]:
    """Copy the weights of every layer of ``target`` that ``source`` has too (same name); return the names.

    ``ValueError`` if a shared layer's weights differ in shape (the stages would not be parts of one
    model)."""
    names = {layer.name for layer in source.layers}
    carried = []
    for layer in target.layers:
        if layer.name not in names or not layer.weights:
            continue
        old = source.get_layer(layer.name)
        shapes = [tuple(w.shape) for w in old.weights], [tuple(w.shape) for w in layer.weights]
        if shapes[0] != shapes[1]:
            raise ValueError(
                f"layer {layer.name!r} has weights {shapes[0]} in one stage and {shapes[1]} in the next"
            )
        for new, value in zip(layer.weights, old.weights, strict=True):
            new.assign(value)
        carried.append(layer.name)
    return carried


def _keyed_variables(optimizer: Any) -> dict[tuple[str, int], Any]:
    """An optimiser's variables keyed by (name, occurrence): names are the model variables' paths with a
    suffix (``g_conv1_kernel_momentum``), the same in every stage; a loss-scale optimiser's inner one repeats
    ``iteration`` and ``learning_rate``, told apart by their order."""
    seen: dict[str, int] = {}
    keyed = {}
    for variable in optimizer.variables:
        count = seen.get(variable.name, 0)
        seen[variable.name] = count + 1
        keyed[(variable.name, count)] = variable
    return keyed


def carry_optimizer(source: Any, target: Any) -> int:
    """Copy every variable of the built optimiser ``source`` that the built ``target`` has too (same name
    and shape: the step counter, the learning rate, the Adam moments of carried variables, a loss scale);
    the moments of new variables stay at zero. Returns how many were copied."""
    old = _keyed_variables(source)
    copied = 0
    for key, variable in _keyed_variables(target).items():
        if key in old and tuple(old[key].shape) == tuple(variable.shape):
            variable.assign(old[key])
            copied += 1
    return copied


# --- the trainer --------------------------------------------------------------------------------------------


class ProgressiveGrowth:
    """The :class:`~mammogan_lib.gan.training.Growth` of a progressive run: the trainer it is given to
    (:class:`~mammogan_lib.gan.training.Trainer`, the same loop as any run) asks it to switch phase before an
    epoch of a new phase, to set the fade weight before every step, and to build the checkpoint's phase
    before a resume loads its weights.
    """

    def __init__(
        self,
        settings: Any,
        stage_images: Mapping[int, np.ndarray],
        class_labels: Any = None,
        separate_upsampling: bool = False,
    ) -> None:
        self.phases = settings_phases(settings)
        self.resolutions = list(settings.progressive_resolutions)
        self.stage_images = dict(stage_images)
        self.separate_upsampling = separate_upsampling
        self.phase = self.phases[0]
        self.n_classes = len(class_labels.classes) if settings.conditional and class_labels is not None else 0

    @property
    def first_images(self) -> np.ndarray:
        return self.stage_images[self.phases[0].resolution]

    def build_phase(self, phase: Phase, settings: Any, policy: str, strategy: Any) -> tuple[tuple, tuple]:
        """The models of ``phase`` (new layers from the stage's seed) and their new optimisers."""
        from mammogan_lib.gan.models.progressive import build_stage_models

        keras = import_keras()
        keras.utils.set_random_seed(stage_seed(settings.seed, phase.stage))
        with strategy.scope() if strategy is not None else nullcontext(), dtype_policy(policy):
            models = build_stage_models(
                settings.architecture,
                phase.resolution,
                settings.resolution,
                phase.fading,
                settings.latent_dim,
                settings.width,
                settings.d_dropout,
                self.separate_upsampling,
                settings.d_spectral_norm,
                self.n_classes,
            )
            if strategy is not None and strategy.num_replicas_in_sync > 1:
                synchronise_batch_norm(models)
            optimizers = built_optimizers(models, settings, policy)
        return models, optimizers

    def enter_phase(self, trainer: Trainer, phase: Phase) -> None:
        """Grow (or, for a resume, jump) ``trainer`` to ``phase``: new models and optimisers with everything
        shared carried over, the stage's images, a new compiled step. Nothing happens if it is the current
        phase."""
        if phase == self.phase:
            return
        models, optimizers = self.build_phase(phase, trainer.settings, trainer.dtype_policy, trainer.strategy)
        for old, new in zip((trainer.generator, trainer.discriminator), models, strict=True):
            carry_weights(old, new)
        for old, new in zip((trainer.g_optimizer, trainer.d_optimizer), optimizers, strict=True):
            carry_optimizer(old, new)
        average = None
        if trainer.generator_ema is not None:  # the average grows too: its layers carried, new ones G's
            average = trainer.averaged_copy(models[0])
            carry_weights(trainer.generator_ema, average)
        images = self.stage_images[phase.resolution] if phase.resolution != self.phase.resolution else None
        trainer.replace_models(models, optimizers, average, images)
        self.phase = phase

    def assign_alpha(self, trainer: Trainer, step: int) -> float:
        """Set the fade weight of the current phase's models for ``step``; return it."""
        from mammogan_lib.gan.models.progressive import fade_layers

        alpha = fade_alpha(self.phase, step, trainer.steps_per_epoch)
        for model in trainer.models.values():
            for layer in fade_layers(model):
                layer.alpha.assign(alpha)
        return alpha

    def before_epoch(self, trainer: Trainer, epoch: int) -> None:
        self.enter_phase(trainer, phase_of_epoch(self.phases, epoch))

    def before_step(self, trainer: Trainer, step: int) -> None:
        self.assign_alpha(trainer, step)

    def prepare_resume(self, trainer: Trainer, state: Mapping[str, Any]) -> None:
        """Build the models of the phase a checkpoint's ``state`` was saved in (before its weights load)."""
        phase = phase_of_epoch(self.phases, int(state["epoch"]))
        saved = state.get("progressive_stage")
        if saved is not None and (int(saved), bool(state.get("fading"))) != (phase.stage, phase.fading):
            raise ValueError(
                f"the checkpoint of epoch {state['epoch']} records stage {saved} "
                f"(fading {state.get('fading')}), "
                f"but this run's schedule has stage {phase.stage} (fading {phase.fading}) there"
            )
        self.enter_phase(trainer, phase)

    def state(self, trainer: Trainer) -> dict[str, Any]:
        return {
            "progressive_stage": self.phase.stage,
            "stage_resolution": self.phase.resolution,
            "fading": self.phase.fading,
            "fade_alpha": fade_alpha(self.phase, trainer.step, trainer.steps_per_epoch),
        }

    def record(self) -> dict[str, Any]:
        """The run's stages for its summary: resolution, epochs and fade epochs of each, and where it is."""
        stages = []
        for stage, resolution in enumerate(self.resolutions):
            phases = [p for p in self.phases if p.stage == stage]
            stages.append(
                {
                    "stage": stage,
                    "resolution": resolution,
                    "epochs": [phases[0].first_epoch, phases[-1].last_epoch],
                    "fade_epochs": sum(p.epochs for p in phases if p.fading),
                }
            )
        return {
            "stages": stages,
            "current_stage": self.phase.stage,
            "current_resolution": self.phase.resolution,
        }

    def data_fingerprint(self, class_labels: Any) -> str:
        return stages_fingerprint(self.stage_images, class_labels)


def build_progressive_trainer(
    stage_images: Mapping[int, Any],
    settings: Any,
    precision: Any,
    separate_upsampling: bool = False,
    devices: Sequence[str] | None = None,
    class_labels: Any = None,
) -> Trainer:
    """The trainer of a progressive run of ``settings``, its models growing through ``stage_images``
    (resolution -> training images, checked)."""
    missing = [r for r in settings.progressive_resolutions if r not in stage_images]
    if missing:
        raise ValueError(
            f"no training images at {missing} for 'progressive_resolutions' "
            f"{settings.progressive_resolutions}: "
            "re-run 02_preprocess with these progressive_resolutions (it writes a cache at each)"
        )
    checked = {r: check_images(stage_images[r], r) for r in settings.progressive_resolutions}
    counts = {r: len(images) for r, images in checked.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"the stages' training sets differ in size: {counts}")
    strategy = distribute.make_strategy(devices) if settings.backend == "tensorflow" else None
    growth = ProgressiveGrowth(settings, checked, class_labels, separate_upsampling)
    models, optimizers = growth.build_phase(growth.phase, settings, precision.policy, strategy)
    return Trainer(
        settings, models, optimizers, growth.first_images, precision, strategy, class_labels, growth
    )
