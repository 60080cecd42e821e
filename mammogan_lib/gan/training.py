"""GAN training (thesis: BCE loss; Adam G lr 1e-4, D lr 1e-5, beta1 0.5; batch 32), resumable exactly.

Usage (notebook 03), with the stage's one config object (:class:`mammogan_lib.core.config.TrainConfig`, whose
defaults are ``params/base.yaml``'s; the run folder is ``<runs_dir>/<exp_id>``)::

    cfg = TrainConfig(exp_id="exp3", runs_dir="runs", resolution=128, epochs=20000)
    trainer = trainers.build_trainer(images, cfg)  # images: (N, 128, 128) float32 in [-1, 1]
    with tqdm(total=cfg.epochs) as bar:
        for progress in train(trainer):  # resumes from run_dir/checkpoints when possible
            bar.update(progress.epoch - bar.n)
            bar.set_postfix(progress.postfix())
            if progress.sample_grid:
                display(Image(filename=progress.sample_grid))

**The step.** One compiled function per iteration, on the Keras backend of the ``backend`` parameter
(:mod:`mammogan_lib.gan.backends`: TensorFlow's ``tf.function`` with two gradient tapes, optional XLA, the
simultaneous update of the TensorFlow DCGAN tutorial; JAX's ``jax.jit``; torch's autograd): ``fake = G(z)``
is computed once and used for both updates::

    d_loss = BCE(1, D(real)) + BCE(0, D(fake))     g_loss = BCE(1, D(fake))   (non-saturating)

Both gradients are taken before either optimiser moves. With a DiffAugment policy, D sees
``augment(real)`` and ``augment(fake)``; the augmented fake is shared by the two losses. The labels are
not inverted (unlike keras-io's DCGAN example). The discriminator outputs probabilities (float32
sigmoid), so BCE is Keras's ``binary_crossentropy`` on probabilities, as the thesis's Keras code had.

**Small-data regularisers** (each off at 0/false, where the step is exactly the one above), added to
``d_loss``; both penalties act on D's *logit* (the sigmoid's input,
:func:`mammogan_lib.gan.models.discriminator.with_logits`), as the papers define them: a probability's
gradients vanish as D saturates, which is when the penalty is needed::

    R1    = r1_gamma / 2 * E[ ||grad_x logit(x)||^2 ]        x: the real images D sees (after DiffAugment)
    LeCam = lecam_weight * ( E[(logit(real) - a_fake)^2] + E[(logit(fake) - a_real)^2] )

R1 (Mescheder et al. 2018) takes the input gradient with a tape nested in D's, so its gradient w.r.t. D's
weights is exact. (Under ``mixed_float16`` that input gradient is taken without loss scaling; tested here
on CPU in float32 and bfloat16 only.) LeCam's anchors ``a_real``, ``a_fake`` (Tseng et al. 2021) are
exponential moving averages (decay :data:`~mammogan_lib.gan.losses.LECAM_DECAY`, starting at 0, D
undecided) of the global batch's mean logits; a step uses the anchors of the steps before it, then updates
them; they are part of the trainer's state (``state.json``), so a resume restores them exactly.
``d_spectral_norm`` wraps D's layers in :class:`~mammogan_lib.gan.models.layers.SpectralNorm`
(:mod:`mammogan_lib.gan.models.discriminator`). The losses are written once, for every backend, in
:mod:`mammogan_lib.gan.losses`.

**The generator's average** (``g_ema_decay`` > 0, e.g. 0.999; :mod:`mammogan_lib.gan.backends.ema`): after
every step a second generator moves towards G, ``G_ema <- d * G_ema + (1 - d) * G``. It takes no part in
the step; the sample grids, 04's images (so 05 and 06) and the exported generator are its images, and
every checkpoint holds it, so a resume continues the same average.

**Class-conditional training** (``conditional: true``; :mod:`mammogan_lib.data.conditioning`). Each training
image has a class (its finding type); G and D take a class index besides their image or latent
(:mod:`mammogan_lib.gan.models`: a class embedding joined to G's latent, a projection discriminator). A step's
real images come with their own classes; its generated images with classes drawn like the latents, from
``(seed, step)`` (:func:`~mammogan_lib.gan.seeding.label_batch`), with the training set's class shares, for
the global batch
(:func:`mammogan_lib.gan.distribute.global_batch_draw`). The same fake classes serve D's and G's losses::

    d_loss = BCE(1, D(real, y_real)) + BCE(0, D(G(z, y_fake), y_fake))
    g_loss = BCE(1, D(G(z, y_fake), y_fake))

The classes and their counts are part of the checkpoint's parameters and the labels part of the data's
fingerprint, so a resume continues with exactly the same labels. Unconditional runs are unchanged.

**Why a plain class and not ``GAN(keras.Model)``.** The notebook drives training through an iterator
(progress bar, checkpoints, sample grids, divergence guard between epochs), not ``fit``; a checkpoint is
the two models' weights plus the two optimisers' variables, saved and restored explicitly. A
``keras.Model`` subclass would add state we do not use and would have to keep out of the checkpoint
(compile state, metric trackers, ``fit``'s own optimizer slot), and ``model.save`` cannot restore a custom
two-optimiser compile. :class:`Trainer` holds exactly what a checkpoint holds.

**Randomness, and why a resume is exact.** Everything random in a step is a function of
``(seed, step)``: the latent batch, the DiffAugment seeds, and the state of every Keras ``SeedGenerator``
in the models (Dropout in D, NoiseInjection in the StyleGAN G), which the step re-seeds from
``(seed, step)`` before using them. The batch order of an epoch is a permutation keyed on
``(seed, epoch)``. So the state carried from one step to the next is exactly the models' variables
(weights, BatchNorm statistics) and the optimisers' variables, which the checkpoint saves bit for bit,
plus the ``step`` and ``epoch`` counters. The initial weights come from ``keras.utils.set_random_seed(seed)``
called just before the models are built (which also seeds Python's and NumPy's global generators). On the
jax and torch backends the same draws are made on the host with numpy
(:func:`mammogan_lib.gan.seeding.host_draws`).

**Precision.** ``precision='auto'`` (the default) trains in what the device computes natively:
``mixed_float16`` on a GPU with tensor cores, ``mixed_bfloat16`` on a CPU with native bfloat16 where a short
calibration on the model itself shows it is faster, ``float32`` otherwise (:mod:`mammogan_lib.gan.precision`).
A run resumed with ``auto`` keeps its checkpoint's policy, so the resume stays exact. float16 comes with
``keras.optimizers.LossScaleOptimizer``, whose scale is checkpointed too. The global dtype policy is set
only while the models are built and restored afterwards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mammogan_lib.core import config, progress
from mammogan_lib.core.config import TrainConfig
from mammogan_lib.core.frameworks import import_keras, use_backend
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.data.conditioning import ClassLabels
from mammogan_lib.gan import backends, distribute
from mammogan_lib.gan import checkpoint as ckpt
from mammogan_lib.gan import precision as precisions
from mammogan_lib.gan.backends import ema
from mammogan_lib.gan.losses import LOSS_KEYS
from mammogan_lib.gan.precision import dtype_policy
from mammogan_lib.gan.seeding import (
    STREAM_SEED_GENERATORS,
    assign_seed_states,
    epoch_permutation,
    host_draws,
    latent_batch,
    nested_layers,
    reseed,
    sample_classes,
    seed_states,
    step_seeds,
)
from mammogan_lib.gan.training_log import LossLog, is_black, write_sample_grid

RESUMABLE_CHANGES: frozenset[str] = frozenset(
    {
        "exp_id",
        "runs_dir",
        "data_dir",
        "workers",
        "epochs",
        "precision",
        "checkpoint_every",
        "sample_every",
        "keep_last",
        "keep_epochs",
        "divergence_patience",
        "data_parallel",
        "time_budget_hours",
        "train_minutes",
        "sample_grid",
        "jit_compile",
        "restart_training",
    }
)
"""Training parameters a resume may change: where the run lives, how long it trains, what it keeps and
shows. ``precision`` is compared through the policy it resolved to (``dtype_policy``)."""

COMPATIBILITY_KEYS: tuple[str, ...] = (
    *(f.name for f in dataclasses.fields(TrainConfig) if f.name not in RESUMABLE_CHANGES),
    "dtype_policy",
    "n_images",
    "data_fingerprint",
    "classes",
)
"""What a checkpoint must share with the trainer to be resumed: every other training parameter (so a new
one counts unless it is added to :data:`RESUMABLE_CHANGES`), the policy and the training data."""

PARAMETER_DEFAULTS: dict[str, Any] = {
    f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
    for f in dataclasses.fields(TrainConfig)
    if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
}
"""Each training parameter's default: what a checkpoint written before the parameter existed ran with."""

SAMPLE_STEP = 0
"""Training steps are numbered from 1; the key of step 0 draws the fixed-noise samples."""


class TrainingDiverged(RuntimeError):
    """Training stopped: non-finite losses, or all-black samples for ``divergence_patience`` grids.

    ``last_checkpoint`` is the newest checkpoint (written before the divergence, and kept);
    ``pending_losses`` the per-step rows computed since it, never written to ``losses.csv``.
    """

    def __init__(self, message: str, epoch: int, last_checkpoint: Path | None, pending_losses: list) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.last_checkpoint = last_checkpoint
        self.pending_losses = pending_losses


class IncompatibleCheckpoint(ValueError):
    """The run folder holds a checkpoint written with different parameters."""


@dataclass(frozen=True)
class Progress:
    """What :func:`train` yields after each epoch (losses are the epoch's means)."""

    epoch: int
    epochs: int
    step: int
    d_loss: float
    g_loss: float
    d_real: float
    d_fake: float
    elapsed_s: float
    epoch_s: float
    checkpoint: Path | None = None
    sample_grid: Path | None = None

    def postfix(self) -> dict[str, str]:
        """Short values for ``tqdm.set_postfix``."""
        return {
            "D": f"{self.d_loss:.3f}",
            "G": f"{self.g_loss:.3f}",
            "D(x)": f"{self.d_real:.2f}",
            "D(G(z))": f"{self.d_fake:.2f}",
        }


# --- the trainer -----------------------------------------------------------------------------------------


class Growth(Protocol):
    """What a trainer whose models change during the run is given (a progressive run's
    :class:`~mammogan_lib.gan.progressive.ProgressiveGrowth`): the trainer asks it before every epoch and
    step, for the counters a checkpoint saves, and before a resume loads weights; it swaps the trainer's
    models through :meth:`Trainer.replace_models`."""

    def before_epoch(self, trainer: Trainer, epoch: int) -> None: ...

    def before_step(self, trainer: Trainer, step: int) -> None: ...

    def state(self, trainer: Trainer) -> dict[str, Any]: ...

    def prepare_resume(self, trainer: Trainer, state: Mapping[str, Any]) -> None: ...

    def record(self) -> dict[str, Any] | None: ...

    def data_fingerprint(self, class_labels: ClassLabels | None) -> str | None: ...


class FixedModels:
    """The :class:`Growth` of a run whose models stay the same from first step to last: nothing to do."""

    def before_epoch(self, trainer: Trainer, epoch: int) -> None:
        pass

    def before_step(self, trainer: Trainer, step: int) -> None:
        pass

    def state(self, trainer: Trainer) -> dict[str, Any]:
        return {}

    def prepare_resume(self, trainer: Trainer, state: Mapping[str, Any]) -> None:
        pass

    def record(self) -> dict[str, Any] | None:
        return None

    def data_fingerprint(self, class_labels: ClassLabels | None) -> str | None:
        return None


def images_fingerprint(images: np.ndarray, class_labels: ClassLabels | None) -> str:
    """A short SHA-256 of the training images (and the class labels): what a resume must train on."""
    data = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    if class_labels is not None:
        data.update(json.dumps(class_labels.classes).encode())
        data.update(np.ascontiguousarray(class_labels.labels).tobytes())
    return data.hexdigest()[:16]


class Trainer:
    """G, D, their optimisers, the training images (on the device) and the step/epoch counters."""

    def __init__(
        self,
        settings: TrainConfig,
        models: tuple[Any, Any],
        optimizers: tuple[Any, Any],
        images: np.ndarray,
        precision: precisions.PrecisionChoice,
        strategy: Any,
        class_labels: ClassLabels | None = None,
        growth: Growth | None = None,
    ) -> None:
        check_class_labels(settings, class_labels, len(images))
        self.growth = growth if growth is not None else FixedModels()

        self.settings = settings
        self.backend = settings.backend
        self.strategy = strategy  # TensorFlow's; None on the other backends (one device)
        self.replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        self.generator, self.discriminator = models
        self.g_optimizer, self.d_optimizer = optimizers
        self.precision = precision
        self.dtype_policy = precision.policy
        self.n_images = len(images)
        self.class_labels = class_labels if settings.conditional else None
        self.data_fingerprint = self.growth.data_fingerprint(self.class_labels) or images_fingerprint(
            images, self.class_labels
        )
        self.steps_per_epoch = resolve_steps_per_epoch(self.n_images, settings)
        self._place_data(images)
        self.step = 0
        self.epoch = 0
        self.black_epochs: list[int] = []  # epochs of the current run of all-black sample grids
        self.budget_stop: dict[str, Any] | None = None  # set by train() when the time budget stopped it
        self.train_seconds = 0.0  # the epochs' wall time, summed over sessions up to the last checkpoint
        self.generator_ema = self.averaged_copy(self.generator) if settings.g_ema_decay else None
        self._step_fn = backends.make_step(self)
        self._ema_update = self._bind_average()

    def averaged_copy(self, generator: Any) -> Any:
        """A new generator of ``generator``'s architecture holding its weights: the start of the average."""
        keras = import_keras()
        with self.strategy.scope() if self.strategy is not None else nullcontext():
            average = keras.models.clone_model(generator)
        average.set_weights(generator.get_weights())
        return average

    def _bind_average(self) -> Any:
        """The update of the generator's average after each step (:mod:`mammogan_lib.gan.backends.ema`), or
        ``None`` without one."""
        if self.generator_ema is None:
            return None
        return ema.make_ema_update(
            self.backend, self.generator_ema, self.generator, self.settings.g_ema_decay
        )

    def _place_data(self, images: np.ndarray) -> None:
        """Put the training images (and labels) on the device, and LeCam's anchors [real, fake] (carried
        from step to step, so saved with the counters) beside them."""
        labels = self.class_labels.labels if self.class_labels is not None else None
        if self.backend != "tensorflow":
            keras = import_keras()
            self.images = keras.ops.convert_to_tensor(images[..., None])
            self.lecam_anchors = keras.Variable(
                np.zeros(2, np.float32), trainable=False, name="lecam_anchors"
            )
            if labels is not None:
                self.labels = keras.ops.convert_to_tensor(labels)
            return
        import tensorflow as tf

        with self.strategy.scope():  # one copy per device
            self.images = tf.Variable(images[..., None], trainable=False, name="training_images")
            self.lecam_anchors = tf.Variable(tf.zeros(2), trainable=False, name="lecam_anchors")
            if labels is not None:
                self.labels = tf.Variable(labels, trainable=False, name="training_labels")

    def replace_models(
        self,
        models: tuple[Any, Any],
        optimizers: tuple[Any, Any],
        generator_ema: Any = None,
        images: np.ndarray | None = None,
    ) -> None:
        """Train ``models`` with ``optimizers`` from the next step on (their weights already set by the
        caller), with ``generator_ema`` as G's average where there is one, and on ``images`` where given
        (LeCam's anchors carried over): a growing run's new phase (:class:`Growth`)."""
        self.generator, self.discriminator = models
        self.g_optimizer, self.d_optimizer = optimizers
        if generator_ema is not None:
            self.generator_ema = generator_ema
        if images is not None:
            anchors = import_keras().ops.convert_to_numpy(self.lecam_anchors)
            self._place_data(images)
            self.lecam_anchors.assign(anchors)
        self._step_fn = backends.make_step(self)
        self._ema_update = self._bind_average()

    @property
    def models(self) -> dict[str, Any]:
        """The models a checkpoint saves: G, D and, with ``g_ema_decay``, G's average."""
        models = {"generator": self.generator, "discriminator": self.discriminator}
        if self.generator_ema is not None:
            models[ckpt.AVERAGED_GENERATOR] = self.generator_ema
        return models

    @property
    def sampling_generator(self) -> Any:
        """The generator that makes images: the average where there is one (as 04 uses it), else G."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    @property
    def optimizers(self) -> dict[str, Any]:
        return {"g_optimizer": self.g_optimizer, "d_optimizer": self.d_optimizer}

    def params(self) -> dict[str, Any]:
        """The settings with ``steps_per_epoch`` and the policy resolved, plus the data's size and fingerprint
        (JSON-ready; saved with every checkpoint)."""
        params = dataclasses.asdict(self.settings)
        params.update(
            steps_per_epoch=self.steps_per_epoch,
            dtype_policy=self.dtype_policy,
            n_images=self.n_images,
            data_fingerprint=self.data_fingerprint,
        )
        if self.class_labels is not None:
            params.update(classes=list(self.class_labels.classes), class_counts=self.class_labels.counts)
        return json.loads(json.dumps(params))

    def state(self) -> dict[str, Any]:
        """The counters a checkpoint saves besides the variables (float32 anchors survive JSON exactly)."""
        state: dict[str, Any] = {
            "step": self.step,
            "epoch": self.epoch,
            "black_epochs": list(self.black_epochs),
            "train_seconds": self.train_seconds,
        }
        if self.settings.lecam_weight:
            state["lecam_anchors"] = [
                float(v) for v in import_keras().ops.convert_to_numpy(self.lecam_anchors)
            ]
        return {**state, **self.growth.state(self)}

    def progressive_record(self) -> dict[str, Any] | None:
        """A growing run's stages for its summary (:meth:`Growth.record`); None for fixed models."""
        return self.growth.record()

    def prepare_resume(self, state: dict[str, Any]) -> None:
        """Make the models those a checkpoint with ``state`` was saved from, before its weights load."""
        self.growth.prepare_resume(self, state)

    def restore_state(self, state: dict[str, Any]) -> None:
        """Set the counters (and LeCam's anchors) a checkpoint's ``state.json`` saved."""
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.black_epochs = list(state.get("black_epochs", []))
        self.train_seconds = float(state.get("train_seconds", 0.0))  # 0: a checkpoint from before it was kept
        self.lecam_anchors.assign(np.asarray(state.get("lecam_anchors", [0.0, 0.0]), np.float32))

    def train_step(self, indices: Sequence[int] | np.ndarray) -> dict[str, float]:
        """One update on the images at ``indices`` (advances ``step``, not ``epoch``)."""
        values = import_keras().ops.convert_to_numpy(self._run_step(np.asarray(indices)))
        return dict(zip(LOSS_KEYS, (float(v) for v in values), strict=True))

    def _run_step(self, indices: np.ndarray) -> Any:
        self.growth.before_step(self, self.step + 1)
        self.step += 1
        values = self._step_fn(indices, self.step)
        if self._ema_update is not None:
            self._ema_update(self.step)
        return values

    def run_epoch(self) -> np.ndarray:
        """Train one epoch; return its per-step losses ``(steps_per_epoch, 4)`` (columns ``LOSS_KEYS``)."""
        ops = import_keras().ops
        self.growth.before_epoch(self, self.epoch + 1)
        order = epoch_permutation(self.settings.seed, self.epoch + 1, self.n_images)
        size = self.settings.batch_size
        results = [self._run_step(order[k * size : (k + 1) * size]) for k in range(self.steps_per_epoch)]
        self.epoch += 1
        return ops.convert_to_numpy(ops.stack(results))

    def sample(self, count: int | None = None) -> np.ndarray:
        """The fixed-noise samples ``(count, R, R)`` in [-1, 1] (same latents for the whole run) of the
        :attr:`sampling_generator`."""
        count = count or self.settings.sample_grid**2
        generator = self.sampling_generator
        seed, states = self.settings.seed, seed_states(generator)
        if self.backend == "tensorflow":
            z = latent_batch(seed, SAMPLE_STEP, count, self.settings.latent_dim)
            reseed(states, step_seeds(seed, SAMPLE_STEP)[STREAM_SEED_GENERATORS])
        else:
            draws = host_draws(
                seed, SAMPLE_STEP, count, self.settings.latent_dim, None, len(states), [], (0, 0)
            )
            z = draws.latents
            assign_seed_states(states, draws.seed_states)
        if self.class_labels is not None:
            z = [np.asarray(z), sample_classes(count, len(self.class_labels.classes))]
        return import_keras().ops.convert_to_numpy(generator(z, training=False))[..., 0]


def check_class_labels(settings: TrainConfig, class_labels: ClassLabels | None, count: int) -> None:
    """``ValueError`` unless a conditional run has one class label per image (an unconditional one may be
    given labels: it ignores them)."""
    if not settings.conditional:
        return
    if class_labels is None:
        raise ValueError(
            "parameter 'conditional' is true but no class labels were given: pass "
            "class_labels=conditioning.labelled_training_set(...)[1]"
        )
    if len(class_labels.labels) != count:
        raise ValueError(f"{len(class_labels.labels)} class labels for {count} training images")


def resolve_steps_per_epoch(count: int, settings: TrainConfig) -> int:
    """``settings.steps_per_epoch``, or one full pass (``count // batch_size``) where it is 0, checked
    against the data."""
    full = count // settings.batch_size
    if full < 1:
        raise ValueError(
            f"the training set has {count} images, fewer than batch_size {settings.batch_size}: "
            "lower batch_size or add images"
        )
    steps = settings.steps_per_epoch or full
    if steps > full:
        raise ValueError(
            f"steps_per_epoch {steps} needs {steps * settings.batch_size} images per epoch, but the training "
            f"set has {count} (at most {full} steps of batch_size {settings.batch_size})"
        )
    return steps


def _make_optimizer(learning_rate: float, beta1: float, policy: str) -> Any:
    keras = import_keras()
    optimizer = keras.optimizers.Adam(learning_rate=learning_rate, beta_1=beta1)
    return keras.optimizers.LossScaleOptimizer(optimizer) if policy == "mixed_float16" else optimizer


def built_optimizers(models: Sequence[Any], settings: TrainConfig, policy: str) -> tuple[Any, Any]:
    """G's and D's Adam (``lr_g``, ``lr_d``, ``beta1``; loss-scaled under float16), built on their models'
    trainable variables."""
    optimizers = (
        _make_optimizer(settings.lr_g, settings.beta1, policy),
        _make_optimizer(settings.lr_d, settings.beta1, policy),
    )
    for model, optimizer in zip(models, optimizers, strict=True):
        optimizer.build(model.trainable_variables)
    return optimizers


def check_images(images: Any, resolution: int) -> np.ndarray:
    """``images`` as a float32 ``(N, R, R)`` array in [-1, 1]; ``ValueError`` saying what is wrong."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 3 or array.shape[1:] != (resolution, resolution) or len(array) == 0:
        raise ValueError(f"training images must be (N >= 1, {resolution}, {resolution}), got {array.shape}")
    low, high = float(array.min()), float(array.max())
    if not (np.isfinite([low, high]).all() and low >= -1.0 - 1e-6 and high <= 1.0 + 1e-6):
        raise ValueError(f"training images must be finite and in [-1, 1], got [{low}, {high}]")
    return np.ascontiguousarray(array)


def assemble_trainer(
    images: np.ndarray,
    settings: TrainConfig,
    precision: precisions.PrecisionChoice,
    separate_upsampling: bool = False,
    devices: Sequence[str] | None = None,
    class_labels: ClassLabels | None = None,
) -> Trainer:
    """The trainer of ``settings`` in ``precision``'s policy on ``devices``
    (:func:`~mammogan_lib.gan.trainers.build_trainer` without
    the choices); ``images`` as :func:`check_images` returns them."""
    from mammogan_lib.gan.models import build_models

    use_backend(settings.backend)
    keras = import_keras()
    policy = precision.policy
    strategy = distribute.make_strategy(devices) if settings.backend == "tensorflow" else None
    keras.utils.set_random_seed(settings.seed)
    with strategy.scope() if strategy is not None else nullcontext(), dtype_policy(policy):
        models = build_models(
            settings.architecture,
            settings.resolution,
            settings.latent_dim,
            settings.width,
            settings.d_dropout,
            separate_upsampling,
            settings.d_spectral_norm,
            len(class_labels.classes) if settings.conditional and class_labels is not None else 0,
        )
        if strategy is not None and strategy.num_replicas_in_sync > 1:
            synchronise_batch_norm(models)
        optimizers = built_optimizers(models, settings, policy)
    return Trainer(settings, models, optimizers, images, precision, strategy, class_labels)


def synchronise_batch_norm(models: Sequence[Any]) -> None:
    """Make every BatchNormalization layer use the global batch's statistics on a multi-device step (the
    statistics of one replica's share would make the step differ from one device's)."""
    keras = import_keras()
    for model in models:
        for layer in nested_layers(model):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.synchronized = True


# --- the training loop ---------------------------------------------------------------------------------


def train(trainer: Trainer, run_dir: Path | str | None = None, force: bool = False) -> Iterator[Progress]:
    """Train up to ``settings.epochs`` (or until ``settings.train_minutes`` of training time, summed over
    sessions, are spent), yielding a :class:`Progress` after each epoch.

    Resumes from the newest checkpoint in ``run_dir/checkpoints`` (``IncompatibleCheckpoint`` if its
    parameters differ; ``force=True`` deletes the run's checkpoints, samples and losses first). Writes
    ``losses.csv`` (at checkpoints), ``samples/epoch_<n>.png`` every ``sample_every`` epochs and
    checkpoints every ``checkpoint_every`` epochs and at the end. Raises :class:`TrainingDiverged` on
    non-finite losses or ``divergence_patience`` all-black sample grids in a row. Yields nothing if the
    newest checkpoint already reached ``epochs``.
    """
    settings = trainer.settings
    run_dir = Path(run_dir if run_dir is not None else settings.run_dir)
    if force:
        reset_run(run_dir)
    log = LossLog(RunPaths(run_dir).losses)
    last_good = resume(trainer, run_dir, log)
    started = time.perf_counter()
    deadline = budget_deadline(settings.time_budget_hours)
    slowest_epoch_s = 0.0
    trainer.budget_stop = None
    while trainer.epoch < settings.epochs and not minutes_spent(trainer):
        epoch_started, first_step = time.perf_counter(), trainer.step + 1
        losses = trainer.run_epoch()
        log.add(first_step, trainer.epoch, losses)
        check_losses(losses, trainer.epoch, first_step, last_good, log)
        epoch_s = time.perf_counter() - epoch_started
        trainer.train_seconds += epoch_s
        slowest_epoch_s = max(slowest_epoch_s, epoch_s)
        # stop now if one more epoch (and its checkpoint, about as long again) could pass the deadline
        stopping = deadline is not None and trainer.epoch < settings.epochs
        stopping = stopping and time.time() + 2 * slowest_epoch_s > deadline
        # the last epoch of train_minutes ends the run as its last epoch would: with a grid and a checkpoint
        done = minutes_spent(trainer)
        grid = _sample_if_due(trainer, run_dir, last_good, log, due=stopping or done)
        written = _checkpoint_if_due(trainer, run_dir, log, due=stopping or done)
        last_good = written or last_good
        if stopping:
            trainer.budget_stop = budget_stop_record(settings, trainer.epoch, written or last_good)
            progress.warn(
                f"{trainer.budget_stop['reason']}: training stops at epoch {trainer.epoch:,} of "
                f"{settings.epochs:,} with checkpoint {trainer.budget_stop['checkpoint']}"
            )
        means = losses.mean(axis=0)
        yield Progress(
            trainer.epoch,
            settings.epochs,
            trainer.step,
            *(float(v) for v in means),
            elapsed_s=time.perf_counter() - started,
            epoch_s=epoch_s,
            checkpoint=written,
            sample_grid=grid,
        )
        if stopping:
            return


def minutes_spent(trainer: Trainer) -> bool:
    """Whether the run has trained for its ``train_minutes`` (summed over sessions); never without one."""
    minutes = trainer.settings.train_minutes
    return bool(minutes) and trainer.train_seconds >= minutes * 60


def budget_deadline(hours: float) -> float | None:
    """The ``time.time()`` by which training must have stopped: ``hours`` after the pipeline started this
    session (:data:`mammogan_lib.core.config.SESSION_STARTED_VARIABLE`; else now), or ``None`` without a
    budget."""
    if not hours:
        return None
    return float(os.environ.get(config.SESSION_STARTED_VARIABLE) or time.time()) + hours * 3600


def budget_stop_record(settings: TrainConfig, epoch: int, checkpoint: Path | None) -> dict[str, Any]:
    """What a run stopped by its time budget says about itself (train_summary.json, provenance, index)."""
    return {
        "reason": f"time budget of {settings.time_budget_hours:g} h reached",
        "epoch": epoch,
        "epochs": settings.epochs,
        "checkpoint": checkpoint.name if checkpoint else "",
        "continue": "run the same command again: training resumes from this checkpoint",
    }


def reset_run(run_dir: Path) -> None:
    """Delete a run's training outputs (checkpoints, samples, losses.csv): a fresh start."""
    paths = RunPaths(run_dir)
    shutil.rmtree(paths.checkpoints, ignore_errors=True)
    shutil.rmtree(paths.samples, ignore_errors=True)
    paths.losses.unlink(missing_ok=True)


def check_compatible(current: dict[str, Any], saved: dict[str, Any], checkpoint_dir: Path) -> None:
    """``IncompatibleCheckpoint`` naming every :data:`COMPATIBILITY_KEYS` value that differs.

    A key the checkpoint lacks is taken as the parameter's default: it was written before the parameter
    existed, and a new parameter's default is the behaviour of before (e.g. ``r1_gamma: 0``)."""
    saved = {**PARAMETER_DEFAULTS, **saved}
    differing = [key for key in COMPATIBILITY_KEYS if current.get(key) != saved.get(key)]
    if differing:
        details = "; ".join(
            f"{k}: {saved.get(k)!r} in the checkpoint, {current.get(k)!r} now" for k in differing
        )
        raise IncompatibleCheckpoint(
            f"{checkpoint_dir} was written with different parameters ({', '.join(differing)}): {details}. "
            "Use a new exp_id for these parameters, or restart_training: true (from code: "
            "train(..., force=True)) to delete this run's checkpoints and start again."
        )


def resume(trainer: Trainer, run_dir: Path, log: LossLog) -> Path | None:
    """Load the newest good checkpoint into ``trainer`` (if any) and cut ``losses.csv`` back to its step.

    Damaged checkpoints are set aside on the way (:func:`mammogan_lib.gan.checkpoint.newest_good_checkpoint`),
    and so is one written before checkpoints had manifests whose files cannot be read: the run resumes,
    exactly, from the one before."""
    while (latest := ckpt.newest_good_checkpoint(run_dir)) is not None:
        check_compatible(trainer.params(), ckpt.read_params(latest), latest)
        trainer.prepare_resume(ckpt.read_state(latest))
        try:
            loaded = ckpt.load_checkpoint(latest, trainer.models, trainer.optimizers)
        except (OSError, ValueError, ckpt.DamagedCheckpoint) as error:
            if (latest / ckpt.MANIFEST_FILE).is_file():
                raise  # verified files that do not load are not damage: the models do not fit them
            ckpt.set_aside(latest, [f"{type(error).__name__}: {str(error).splitlines()[0]}"])
            continue
        trainer.restore_state(loaded.state)
        log.truncate(trainer.step)
        return latest
    if trainer.step:
        raise RuntimeError(
            f"this trainer already ran {trainer.step} steps that were never checkpointed in {run_dir}; "
            "build a new trainer"
        )
    log.truncate(0)
    return None


def _diverged(message: str, epoch: int, last_good: Path | None, log: LossLog) -> TrainingDiverged:
    where = (
        f"the last checkpoint with finite losses and whole files is {last_good} (kept)"
        if last_good
        else "no checkpoint had been written yet"
    )
    return TrainingDiverged(
        f"{message}; {where}. No checkpoint was written from the diverged state.",
        epoch,
        last_good,
        list(log.pending),
    )


def check_losses(
    losses: np.ndarray, epoch: int, first_step: int, last_good: Path | None, log: LossLog
) -> None:
    """``TrainingDiverged`` if any loss of the epoch is NaN or infinite (names the first bad step)."""
    bad = ~np.isfinite(losses)
    if bad.any():
        row = int(np.argmax(bad.any(axis=1)))
        values = ", ".join(f"{k}={v}" for k, v in zip(LOSS_KEYS, losses[row], strict=True))
        message = f"training diverged at epoch {epoch}, step {first_step + row}: non-finite losses ({values})"
        raise _diverged(message, epoch, last_good, log)


def _sample_if_due(
    trainer: Trainer, run_dir: Path, last_good: Path | None, log: LossLog, due: bool = False
) -> Path | None:
    """Write the fixed-noise grid when due (or ``due``); track all-black grids and raise after too many in
    a row."""
    settings, epoch = trainer.settings, trainer.epoch
    if epoch % settings.sample_every and epoch != settings.epochs and not due:
        return None
    samples = trainer.sample()
    grid_path = RunPaths(run_dir).samples / f"epoch_{epoch:06d}.png"
    path = write_sample_grid(samples, grid_path, settings.sample_grid)
    trainer.black_epochs = [*trainer.black_epochs, epoch] if is_black(samples) else []
    if len(trainer.black_epochs) >= settings.divergence_patience:
        message = (
            f"training diverged at epoch {epoch}: the fixed-noise samples were all black "
            f"(mean {samples.mean():.4f}, std {samples.std():.4f} at epoch {epoch}) in "
            f"{len(trainer.black_epochs)} grids in a row (epochs {trainer.black_epochs})"
        )
        raise _diverged(message, epoch, last_good, log)
    return path


def _checkpoint_if_due(trainer: Trainer, run_dir: Path, log: LossLog, due: bool = False) -> Path | None:
    """Checkpoint every ``checkpoint_every`` epochs, at the end and when ``due`` (the time budget's stop),
    flushing the losses first.

    A due checkpoint is skipped while the latest sample grid is all black (except the last of the session),
    so the checkpoint named by :class:`TrainingDiverged` predates the collapse and retention cannot delete
    it.
    """
    settings, epoch = trainer.settings, trainer.epoch
    final = epoch == settings.epochs or due
    if (epoch % settings.checkpoint_every and not final) or (trainer.black_epochs and not final):
        return None
    log.flush()  # before the checkpoint: a crash in between leaves rows that the resume truncates
    path = ckpt.save_checkpoint(
        run_dir, epoch, trainer.models, trainer.optimizers, trainer.state(), trainer.params()
    )
    ckpt.apply_retention(run_dir, settings.keep_last, settings.keep_epochs)
    return path


__all__ = [
    "IncompatibleCheckpoint",
    "Progress",
    "Trainer",
    "TrainingDiverged",
    "train",
]
