"""The trainer a run's settings ask for: :class:`~mammogan_lib.gan.training.Trainer`, or with
``progressive_resolutions`` one whose models grow (:class:`~mammogan_lib.gan.progressive.ProgressiveGrowth`),
in the precision the run trains in (:func:`choose_run_precision`: with ``precision: auto``, the policy
:mod:`mammogan_lib.gan.precision` picks, calibrated on probe trainers of the run's own settings).

Usage (notebook 03)::

    trainer = build_trainer(images, cfg)  # then training.train(trainer)
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Sequence
from typing import Any

import numpy as np

from mammogan_lib.core.config import TrainConfig
from mammogan_lib.core.frameworks import use_backend
from mammogan_lib.core.timing import time_calls
from mammogan_lib.data.conditioning import ClassLabels
from mammogan_lib.gan import checkpoint as ckpt
from mammogan_lib.gan import distribute
from mammogan_lib.gan import precision as precisions
from mammogan_lib.gan.progressive import build_progressive_trainer
from mammogan_lib.gan.training import (
    Trainer,
    assemble_trainer,
    check_class_labels,
    check_images,
    reset_run,
    resolve_steps_per_epoch,
)


def build_trainer(
    images: Any,
    settings: TrainConfig,
    separate_upsampling: bool = False,
    devices: Sequence[str] | None = None,
    class_labels: ClassLabels | None = None,
    stage_images: dict[int, Any] | None = None,
) -> Trainer:
    """Build G and D (under the run's dtype policy, :func:`choose_run_precision`), their optimisers, and
    the trainer.

    ``images``: the whole training set, ``(N, R, R)`` (or ``(N, R, R, 1)``) float32 in [-1, 1]; held in
    device memory. Calls ``keras.utils.set_random_seed(settings.seed)`` so the initial weights repeat.
    With ``settings.restart_training`` the run's checkpoints, samples and losses are deleted first (a fresh
    start, also of the precision choice). ``separate_upsampling``: the thesis's two-layer upsampling blocks
    (the benchmark's reference). ``devices``: the devices to train on data-parallel; ``None`` = every
    visible GPU when there are several and ``settings.data_parallel``, else one device. ``class_labels``:
    one class per image, needed when ``settings.conditional``
    (:func:`mammogan_lib.data.conditioning.labelled_training_set`). ``stage_images``: with
    ``settings.progressive_resolutions``, the training images at each of them
    (:func:`mammogan_lib.gan.progressive.stage_training_images`); the trainer's models then grow through
    them (:class:`~mammogan_lib.gan.progressive.ProgressiveGrowth`).
    """
    use_backend(settings.backend)
    array = check_images(images, settings.resolution)
    check_class_labels(settings, class_labels, len(array))
    resolve_steps_per_epoch(len(array), settings)
    if devices is None:
        devices = distribute.training_devices(settings.data_parallel)
    if devices and len(devices) > 1:
        distribute.replica_share(settings.batch_size, len(devices))
    if settings.restart_training:
        reset_run(settings.run_dir)
    class_labels = class_labels if settings.conditional else None
    precision = choose_run_precision(array, settings, class_labels)
    if settings.progressive_resolutions:
        stages = {**(stage_images or {}), settings.resolution: array}
        return build_progressive_trainer(
            stages, settings, precision, separate_upsampling, devices, class_labels
        )
    return assemble_trainer(array, settings, precision, separate_upsampling, devices, class_labels)


CALIBRATION_WARMUP = 2
CALIBRATION_STEPS = 5
"""``precision: auto`` on a CPU with native bfloat16 times this many steps of each policy (after warm-up)."""


def first_labels(class_labels: ClassLabels | None, count: int) -> ClassLabels | None:
    """The labels of the first ``count`` images (the calibration probes train on those)."""
    if class_labels is None:
        return None
    return ClassLabels(class_labels.classes, class_labels.labels[:count])


def choose_run_precision(
    images: np.ndarray, settings: TrainConfig, class_labels: ClassLabels | None = None
) -> precisions.PrecisionChoice:
    """The policy this run trains in (see the module doc): ``auto`` keeps a resumed checkpoint's policy,
    else asks :func:`mammogan_lib.gan.precision.choose_precision`, calibrating on these images and
    settings."""
    gpus, flags = precisions.gpu_devices(), precisions.cpu_flags()
    latest = ckpt.newest_good_checkpoint(settings.run_dir) if settings.precision == "auto" else None
    if latest is not None:
        saved = ckpt.read_params(latest).get("dtype_policy")
        if saved:
            return precisions.resumed_choice(saved, latest, gpus, flags)
    return precisions.choose_precision(
        settings.precision,
        gpus,
        flags,
        calibrate=lambda policies: calibrate(images, settings, policies, class_labels),
        reduced_precision_problem=precisions.torch_cpu_problem if settings.backend == "torch" else None,
    )


def calibrate(
    images: np.ndarray,
    settings: TrainConfig,
    policies: Sequence[str],
    class_labels: ClassLabels | None = None,
) -> dict[str, float]:
    """Median ms per step of the train step under each of ``policies``, on models of these settings and the
    first batch of ``images`` (:data:`CALIBRATION_STEPS` after :data:`CALIBRATION_WARMUP`).

    The policies' steps are timed in turn (one of each, then again), so that a load which comes and goes
    on the machine meets them alike instead of favouring whichever ran at a quiet moment. The probe
    trainers are thrown away; the run's own models are built afterwards from the seed, so a calibration
    changes nothing but the policy chosen.
    """
    batch = np.arange(settings.batch_size)
    probe_settings = dataclasses.replace(settings, steps_per_epoch=0, restart_training=False)
    probes = {
        policy: assemble_trainer(
            images[: settings.batch_size],
            probe_settings,
            precisions.PrecisionChoice("auto", policy, "calibration probe", ""),
            class_labels=first_labels(class_labels, settings.batch_size),
        )
        for policy in policies
    }
    for probe in probes.values():
        time_calls(lambda probe=probe: probe.train_step(batch), CALIBRATION_WARMUP, 0)
    seconds: dict[str, list[float]] = {policy: [] for policy in policies}
    for _ in range(CALIBRATION_STEPS):
        for policy, probe in probes.items():
            seconds[policy] += time_calls(lambda probe=probe: probe.train_step(batch), 0, 1).wall
    del probes
    gc.collect()
    return {policy: round(1000 * float(np.median(wall)), 1) for policy, wall in seconds.items()}
