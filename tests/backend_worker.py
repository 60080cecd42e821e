"""One Keras backend's side of tests/test_backends.py, run in its own process (Keras picks its backend at
import): ``python tests/backend_worker.py BACKEND TASK FOLDER``. It writes what it computed to
``FOLDER/<task>_<backend>.npz`` and the pytest process compares the backends' files.

Tasks:
- ``step``: one train step of each case in :data:`STEP_CASES` from the weights and draws the tensorflow
  worker wrote (``FOLDER/<case>/``): losses and updated weights. The tensorflow worker writes the weights
  (built on tensorflow) and the draws (TensorFlow's own for step 1), then steps like the others.
- ``augment``: ``apply_augment`` of fixed images and values.
- ``resume``: 3 epochs straight vs 1 epoch + a fresh trainer resuming for 2 (losses of both).
- ``checkpoint``: a short run's checkpoint generator, and its images for fixed latents.
- ``generate``: the generator of the tensorflow and jax workers' ``checkpoint`` runs, loaded here, on the
  same latents.
- ``float16``: three steps in mixed_float16 with loss scaling.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

BACKEND, TASK, FOLDER = sys.argv[1], sys.argv[2], Path(sys.argv[3])
os.environ["KERAS_BACKEND"] = BACKEND
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from mammogan_lib.core.config import AUGMENT_POLICIES, TrainConfig, parse_policy  # noqa: E402
from mammogan_lib.core.frameworks import import_keras  # noqa: E402
from mammogan_lib.data.conditioning import ClassLabels  # noqa: E402
from mammogan_lib.gan import seeding, trainers, training  # noqa: E402
from mammogan_lib.gan.augment import APPLY, apply_augment, augment_draws  # noqa: E402
from mammogan_lib.gan.losses import LOSS_KEYS  # noqa: E402

keras = import_keras()
ops = keras.ops
BATCH, LATENT, IMAGES = 8, 16, 16

STEP_CASES: dict[str, dict] = {
    "plain": {},
    "augmented_r1_lecam": {
        "augment_policy": ",".join(AUGMENT_POLICIES),
        "r1_gamma": 10.0,
        "lecam_weight": 0.5,
    },
    "conditional": {"conditional": True, "augment_policy": "translation"},
    "deep": {"architecture": "deep"},
    "spectral_norm": {"d_spectral_norm": True, "r1_gamma": 10.0},
    "moving_average": {"g_ema_decay": 0.9},
    "fastgan": {"architecture": "fastgan", "d_spectral_norm": True, "augment_policy": "translation"},
}
"""The step cases every backend computes (dropout 0: a Dropout mask is its backend's own draw, as is the
StyleGAN-like generator's noise, whose forward pass the ``forward/`` arrays compare instead)."""


def settings(run_dir: Path, **overrides) -> TrainConfig:
    values = dict(
        exp_id=run_dir.name,
        runs_dir=str(run_dir.parent),
        resolution=64,
        latent_dim=LATENT,
        width=0.125,
        batch_size=BATCH,
        d_dropout=0.0,
        precision="float32",
        epochs=3,
        checkpoint_every=1,
        sample_every=1,
        keep_epochs=[],
        backend=BACKEND,
    )
    return TrainConfig(**{**values, **overrides})


def training_data(conditional: bool) -> tuple[np.ndarray, ClassLabels | None]:
    rng = np.random.default_rng(7)
    images = rng.uniform(-1, 1, (IMAGES, 64, 64)).astype(np.float32)
    labels = ClassLabels(("calcification", "mass"), (np.arange(IMAGES) % 2).astype(np.int32))
    return images, labels if conditional else None


def numpy_of(values) -> list[np.ndarray]:
    return [np.asarray(ops.convert_to_numpy(v)) for v in values]


def tensorflow_draws(trainer: training.Trainer, step: int, names: list[str]) -> seeding.HostDraws:
    """The draws TensorFlow's step makes at ``step``, as numpy (the other backends are handed them)."""
    import tensorflow as tf

    from mammogan_lib.gan.augment import DRAWS

    keys = seeding.step_seeds(trainer.settings.seed, step)
    x = tf.zeros((BATCH, 64, 64, 1))

    def augment(stream: int) -> list:
        if not names:
            return []
        seeds = tf.random.experimental.stateless_split(keys[stream], num=len(names))
        draws = [DRAWS[name](x, seeds[i]) for i, name in enumerate(names)]
        return [[d.numpy() for d in draw] if isinstance(draw, list) else draw.numpy() for draw in draws]

    quadrants = None
    if trainer.settings.architecture == "fastgan":
        part_seed = tf.random.experimental.stateless_split(keys[seeding.STREAM_SEED_GENERATORS], num=2)[1]
        quadrants = tf.random.stateless_uniform((BATCH,), part_seed, 0, 4, dtype=tf.int32).numpy()
    latents = seeding.latent_batch(trainer.settings.seed, step, BATCH, LATENT).numpy()
    classes = None
    if trainer.class_labels is not None:
        classes = seeding.label_batch(trainer.settings.seed, step, BATCH, trainer.class_labels.priors).numpy()
    return seeding.HostDraws(
        latents,
        classes,
        np.zeros((0, 2)),
        augment(seeding.STREAM_AUGMENT_REAL),
        augment(seeding.STREAM_AUGMENT_FAKE),
        quadrants,
    )


def step_task() -> dict[str, np.ndarray]:
    import pickle

    results = {}
    for case, overrides in STEP_CASES.items():
        case_dir = FOLDER / case
        case_dir.mkdir(parents=True, exist_ok=True)
        cfg = settings(FOLDER / f"run_{case}_{BACKEND}", **overrides)
        images, labels = training_data(cfg.conditional)
        trainer = trainers.build_trainer(images, cfg, class_labels=labels)
        names = parse_policy(cfg.augment_policy)
        if BACKEND == "tensorflow":
            for name, model in trainer.models.items():
                model.save_weights(case_dir / f"{name}.weights.h5")
            (case_dir / "draws.pkl").write_bytes(pickle.dumps(tensorflow_draws(trainer, 1, names)))
        else:
            for name, model in trainer.models.items():
                model.load_weights(case_dir / f"{name}.weights.h5")
            given = pickle.loads((case_dir / "draws.pkl").read_bytes())
            module = sys.modules[f"mammogan_lib.gan.backends.{BACKEND}_step"]
            # the step's draws: TensorFlow's (its SeedGenerators' states: unused, dropout is 0)
            module.step_draws = lambda trainer, step, batch, count, given=given: dataclasses.replace(
                given, seed_states=np.zeros((count, 2))
            )
        before = [w for model in trainer.models.values() for w in numpy_of(model.weights)]
        step_losses = trainer.train_step(np.arange(BATCH))
        results[f"{case}/losses"] = np.array([step_losses[k] for k in LOSS_KEYS])
        after = [w for model in trainer.models.values() for w in numpy_of(model.weights)]
        results[f"{case}/largest_change"] = np.array(
            max(float(np.abs(a - b).max()) for a, b in zip(after, before, strict=True))
        )
        for name, model in trainer.models.items():
            for index, (weight, value) in enumerate(zip(model.weights, numpy_of(model.weights), strict=True)):
                # a noise layer's strength learns from its backend's own noise draw (exp7's generator)
                if "_noise" not in weight.path:
                    results[f"{case}/{name}/{index}"] = value
    results.update(forward_passes())
    return results


def forward_passes() -> dict[str, np.ndarray]:
    """Every architecture's G (inference) and D on fixed inputs, from weights built on tensorflow."""
    from mammogan_lib.gan.models import build_models

    results = {}
    for architecture in ("baseline", "deep", "stylegan"):
        generator, discriminator = build_models(architecture, 64, LATENT, 0.125, 0.0)
        files = [
            FOLDER / f"forward_{architecture}_{name}.weights.h5" for name in ("generator", "discriminator")
        ]
        for model, path in zip((generator, discriminator), files, strict=True):
            model.save_weights(path) if BACKEND == "tensorflow" else model.load_weights(path)
        images = ops.convert_to_numpy(generator(fixed_latents(), training=False))
        results[f"forward/{architecture}/generator"] = images
        results[f"forward/{architecture}/discriminator"] = ops.convert_to_numpy(discriminator(images))
    return results


def augment_task() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    images = rng.uniform(-1, 1, (6, 32, 48, 1)).astype(np.float32)
    results = {}
    for name in APPLY:
        draws = augment_draws([name], len(images), (32, 48), np.random.default_rng(5))
        results[name] = ops.convert_to_numpy(apply_augment(ops.convert_to_tensor(images), [name], draws))
    return results


def resume_task() -> dict[str, np.ndarray]:
    images, _ = training_data(False)
    overrides = {
        "d_dropout": 0.3,
        "augment_policy": "translation,cutout",
        "lecam_weight": 0.5,
        "d_spectral_norm": True,
        "g_ema_decay": 0.9,
    }
    straight = trainers.build_trainer(images, settings(FOLDER / f"straight_{BACKEND}", **overrides))
    uninterrupted = [p.d_loss for p in training.train(straight)]
    run_dir = FOLDER / f"resumed_{BACKEND}"
    first = trainers.build_trainer(images, settings(run_dir, epochs=1, **overrides))
    before = [p.d_loss for p in training.train(first)]
    second = trainers.build_trainer(images, settings(run_dir, **overrides))  # a new process would do this
    after = [p.d_loss for p in training.train(second)]
    return {
        "uninterrupted": np.array(uninterrupted),
        "resumed": np.array(before + after),
        # the generators' moving averages, through the images they make
        "average_uninterrupted": straight.sample(),
        "average_resumed": second.sample(),
        "average_distance_to_generator": np.array(
            max(
                float(np.abs(a - b).max())
                for a, b in zip(
                    numpy_of(straight.generator_ema.weights),
                    numpy_of(straight.generator.weights),
                    strict=True,
                )
            )
        ),
    }


def fixed_latents() -> np.ndarray:
    return np.random.default_rng(11).standard_normal((4, LATENT)).astype(np.float32)


def checkpoint_task() -> dict[str, np.ndarray]:
    from mammogan_lib.gan import checkpoint as ckpt

    images, _ = training_data(False)
    run_dir = FOLDER / f"checkpoint_{BACKEND}"
    trainer = trainers.build_trainer(images, settings(run_dir, epochs=1))
    list(training.train(trainer))
    generator = ckpt.load_generator(ckpt.latest_checkpoint(run_dir))
    return {"images": ops.convert_to_numpy(generator(fixed_latents(), training=False))}


def generate_task() -> dict[str, np.ndarray]:
    from mammogan_lib.gan import checkpoint as ckpt

    results = {}
    for trained_on in ("tensorflow", "jax", "torch"):
        latest = ckpt.latest_checkpoint(FOLDER / f"checkpoint_{trained_on}")
        if latest is not None:
            generator = ckpt.load_generator(latest)
            results[trained_on] = ops.convert_to_numpy(generator(fixed_latents(), training=False))
    return results


def float16_task() -> dict[str, np.ndarray]:
    """Three steps in mixed_float16: the losses, and the loss scale's state (Keras's dynamic scale starts at
    2**15 and counts finite steps)."""
    images, _ = training_data(False)
    cfg = settings(FOLDER / f"float16_{BACKEND}", precision="mixed_float16", r1_gamma=1.0)
    trainer = trainers.build_trainer(images, cfg)
    losses = [list(trainer.train_step(np.arange(BATCH)).values()) for _ in range(3)]
    state = {v.path.split("/")[-1]: ops.convert_to_numpy(v) for v in trainer.g_optimizer.variables}
    return {
        "losses": np.array(losses),
        "dynamic_scale": state["dynamic_scale"],
        "step_counter": state["step_counter"],
        "compute_dtype": np.array(str(trainer.generator.get_layer("g_dense").compute_dtype)),
    }


def progressive_task() -> dict[str, np.ndarray]:
    """A progressive run 64 -> 128 (epochs 1-2 at 64, 3-4 the fade, 5-6 the grown models): 6 epochs
    straight vs killed after epoch 3 (mid-fade, the checkpoint of epoch 3 kept) and resumed in a fresh
    trainer."""
    from mammogan_lib.data import preprocess

    final = np.random.default_rng(9).uniform(-1, 1, (IMAGES, 128, 128)).astype(np.float32)
    low = preprocess.downsample(final, 64)
    overrides = {
        "resolution": 128,
        "epochs": 6,
        "progressive_resolutions": [64, 128],
        "progressive_epochs": [2, 4],
        "d_dropout": 0.2,
        "g_ema_decay": 0.9,  # the average grows with G
    }

    def trainer(run_dir: Path) -> training.Trainer:
        return trainers.build_trainer(final, settings(run_dir, **overrides), stage_images={64: low})

    straight = trainer(FOLDER / f"progressive_straight_{BACKEND}")
    uninterrupted = [p.d_loss for p in training.train(straight)]
    run_dir = FOLDER / f"progressive_resumed_{BACKEND}"
    resumed = []
    for progress in training.train(trainer(run_dir)):  # killed after epoch 3, mid-fade (checkpoint kept)
        resumed.append(progress.d_loss)
        if progress.epoch == 3:
            break
    second = trainer(run_dir)  # as a new process would resume
    resumed += [p.d_loss for p in training.train(second)]
    return {
        "uninterrupted": np.array(uninterrupted),
        "resumed": np.array(resumed),
        "average_uninterrupted": straight.sample(),
        "average_resumed": second.sample(),
    }


TASKS = {
    "step": step_task,
    "augment": augment_task,
    "resume": resume_task,
    "checkpoint": checkpoint_task,
    "generate": generate_task,
    "float16": float16_task,
    "progressive": progressive_task,
}

if __name__ == "__main__":
    outputs = TASKS[TASK]()
    np.savez(FOLDER / f"{TASK}_{BACKEND}.npz", **outputs)
    print("backend", keras.backend.backend(), "task", TASK, "wrote", len(outputs), "arrays")
