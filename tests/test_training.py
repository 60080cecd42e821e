"""GAN training: the step, seeding, exact resume after a kill, divergence guard, precision, DiffAugment.

Tiny models (64x64, width 0.125, latent 16, batch 8, 32 random images: 4 steps per epoch) on CPU, where
TensorFlow's kernels are deterministic, so "the same" means bit for bit (``np.array_equal``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mammogan_lib.core.frameworks import import_keras

keras = import_keras()

from mammogan_lib.core import config  # noqa: E402
from mammogan_lib.core.config import ParameterError, TrainConfig  # noqa: E402
from mammogan_lib.gan import checkpoint as ckpt  # noqa: E402
from mammogan_lib.gan import (  # noqa: E402
    losses,
    seeding,
    trainers,
    training,
    training_report,
)
from mammogan_lib.gan import precision as precisions  # noqa: E402
from mammogan_lib.gan.losses import LOSS_KEYS  # noqa: E402
from mammogan_lib.gan.seeding import latent_batch  # noqa: E402
from mammogan_lib.gan.trainers import build_trainer  # noqa: E402
from mammogan_lib.gan.training import TrainingDiverged, train  # noqa: E402
from mammogan_lib.gan.training_log import LOSS_COLUMNS  # noqa: E402
from tests.conftest import PROJECT_ROOT  # noqa: E402

# keras 3.15's own save_weights calls np.array(variable); numpy 2 warns about its __array__ signature
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

BATCH = 8


def small_settings(run_dir, **overrides) -> TrainConfig:
    """Tiny models (64x64, width 1/8, latent 16, batch 8), float32, 2 epochs, training into ``run_dir``
    (the config's runs_dir and exp_id are its parent and name)."""
    run_dir = Path(run_dir)
    values = dict(
        exp_id=run_dir.name,
        runs_dir=str(run_dir.parent),
        architecture="baseline",
        resolution=64,
        latent_dim=16,
        width=0.125,
        batch_size=BATCH,
        epochs=2,
        checkpoint_every=1,
        sample_every=1,
        keep_last=10,
        keep_epochs=[],
        seed=0,
        precision="float32",
    )
    return TrainConfig(**{**values, **overrides})


def training_images(count: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (count, 64, 64)).astype("float32")


def as_written_by_format(checkpoint_dir: Path, version: int) -> None:
    """Make a checkpoint look like one of an earlier format: its version in state.json, no manifest."""
    state = json.loads((checkpoint_dir / ckpt.STATE_FILE).read_text())
    (checkpoint_dir / ckpt.STATE_FILE).write_text(json.dumps({**state, "format_version": version}))
    (checkpoint_dir / ckpt.MANIFEST_FILE).unlink()


def read_losses(run_dir) -> pd.DataFrame:
    return pd.read_csv(run_dir / "losses.csv")


def test_one_step_gives_finite_losses_and_images_in_range(tmp_path):
    trainer = build_trainer(training_images(), small_settings(tmp_path))
    result = trainer.train_step(np.arange(BATCH))
    assert tuple(result) == LOSS_KEYS and trainer.step == 1
    assert all(np.isfinite(v) for v in result.values())
    assert 0 <= result["d_real"] <= 1 and 0 <= result["d_fake"] <= 1
    images = trainer.generator(latent_batch(0, 1, 4, 16), training=True).numpy()
    assert images.shape == (4, 64, 64, 1) and images.min() >= -1 and images.max() <= 1


def test_train_writes_losses_samples_and_checkpoints(tmp_path):
    settings = small_settings(tmp_path, epochs=3, checkpoint_every=2, sample_every=2)
    records = list(train(build_trainer(training_images(), settings)))
    assert [(p.epoch, p.step) for p in records] == [(1, 4), (2, 8), (3, 12)]
    assert [p.checkpoint is not None for p in records] == [False, True, True]  # every 2 and the last
    assert [p.sample_grid is not None for p in records] == [False, True, True]
    grid = cv2.imread(str(records[1].sample_grid), cv2.IMREAD_UNCHANGED)
    assert records[1].sample_grid == tmp_path / "samples" / "epoch_000002.png"
    assert grid.dtype == np.uint8 and grid.shape == (4 * 64 + 3 * 2, 4 * 64 + 3 * 2)
    losses = read_losses(tmp_path)
    assert tuple(losses.columns) == LOSS_COLUMNS
    assert (
        losses["step"].tolist() == list(range(1, 13))
        and losses["epoch"].tolist() == [1] * 4 + [2] * 4 + [3] * 4
    )
    assert records[2].d_loss == pytest.approx(losses[losses.epoch == 3]["d_loss"].mean(), rel=1e-6)
    assert set(records[0].postfix()) == {"D", "G", "D(x)", "D(G(z))"}
    finished = build_trainer(training_images(), settings)
    assert list(train(finished)) == [] and finished.epoch == 3  # nothing left to do, state restored


def test_same_seed_same_losses_and_different_seed_differs(tmp_path):
    images = training_images()
    first = build_trainer(images, small_settings(tmp_path)).run_epoch()
    again = build_trainer(images, small_settings(tmp_path)).run_epoch()
    other = build_trainer(images, small_settings(tmp_path, seed=1)).run_epoch()
    assert first.shape == (4, 4)
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)


def test_too_few_images_or_steps_are_refused_with_both_numbers(tmp_path):
    with pytest.raises(ValueError, match=r"6 images.*batch_size 8"):
        build_trainer(training_images(6), small_settings(tmp_path))
    with pytest.raises(ValueError, match=r"steps_per_epoch 5.*32"):
        build_trainer(training_images(), small_settings(tmp_path, steps_per_epoch=5))
    with pytest.raises(ValueError, match="in \\[-1, 1\\]"):
        build_trainer(training_images() * 2, small_settings(tmp_path))


RESUME_SCRIPT = """
import json, sys
import numpy as np
from mammogan_lib.core.config import TrainConfig
from mammogan_lib.gan.trainers import build_trainer
from mammogan_lib.gan.training import train
settings = TrainConfig(**json.loads(sys.argv[1]))
print(json.dumps([p.epoch for p in train(build_trainer(np.load(sys.argv[2]), settings))]))
"""


def resume_in_new_process(settings: TrainConfig, images_path) -> list[int]:
    """Run train() in a fresh Python process (nothing shared with this one but the run folder)."""
    done = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, json.dumps(dataclasses.asdict(settings)), str(images_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path):
    images = training_images()
    np.save(tmp_path / "images.npy", images)
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    # with the generator's moving average, which the checkpoints carry like the rest of the state
    settings_a = small_settings(run_a, epochs=4, checkpoint_every=2, sample_every=2, g_ema_decay=0.9)
    trainer_a = build_trainer(images, settings_a)
    list(train(trainer_a))

    settings_b = small_settings(run_b, epochs=4, checkpoint_every=2, sample_every=2, g_ema_decay=0.9)
    for progress in train(build_trainer(images, settings_b)):
        if progress.epoch == 3:  # killed after epoch 3: its losses were never flushed
            break
    assert ckpt.latest_checkpoint(run_b) == run_b / "checkpoints" / "epoch_000002"
    assert read_losses(run_b)["step"].max() == 8
    # a checkpoint write killed half-way, and loss rows flushed just before a crash
    partial = run_b / "checkpoints" / "epoch_000004.tmp-999999"
    partial.mkdir()
    (partial / "generator.weights.h5").write_bytes(b"half a file")
    with open(run_b / "losses.csv", "a") as handle:
        handle.write("9,3,1.0,1.0,0.5,0.5\n")
    assert ckpt.latest_checkpoint(run_b).name == "epoch_000002"

    assert resume_in_new_process(settings_b, tmp_path / "images.npy") == [3, 4]
    assert not partial.exists()
    losses_a, losses_b = read_losses(run_a), read_losses(run_b)
    assert losses_b["step"].tolist() == list(range(1, 17))
    assert np.array_equal(losses_a.to_numpy(), losses_b.to_numpy())  # epochs 3-4 included, bit for bit

    resumed = build_trainer(images, settings_b)
    ckpt.load_checkpoint(run_b / "checkpoints" / "epoch_000004", resumed.models, resumed.optimizers)
    assert list(resumed.models) == ["generator", "discriminator", "generator_ema"]
    for model in resumed.models:
        for a, b in zip(trainer_a.models[model].weights, resumed.models[model].weights, strict=True):
            assert np.array_equal(a.numpy(), b.numpy()), a.path
    for name in ("g_optimizer", "d_optimizer"):
        for a, b in zip(
            trainer_a.optimizers[name].variables, resumed.optimizers[name].variables, strict=True
        ):
            assert np.array_equal(a.numpy(), b.numpy()), a.path


def test_a_resume_cuts_the_loss_log_back_to_its_checkpoint_and_drops_a_row_cut_short(tmp_path):
    from mammogan_lib.gan.training_log import LossLog

    log = LossLog(tmp_path / "losses.csv")
    log.add(1, 1, np.ones((4, 4)))
    log.flush()
    with open(log.path, "a") as handle:
        handle.write("5,2,1.0,1.0,0.5,0.5\n1")  # step 5, then step 1x's row cut after its first digit
    log.truncate(4)
    assert read_losses(tmp_path)["step"].tolist() == [1, 2, 3, 4]


@pytest.mark.slow
def test_the_time_budget_stops_with_a_checkpoint_and_the_next_session_finishes_the_same_run(
    tmp_path, monkeypatch
):
    images = training_images()
    whole = small_settings(tmp_path / "whole", epochs=4, checkpoint_every=10, sample_every=10)
    list(train(build_trainer(images, whole)))

    budgeted = dataclasses.replace(whole, exp_id="budgeted", time_budget_hours=1.0)
    # the pipeline started this session an hour ago: the budget is spent once the first epoch ends
    monkeypatch.setenv(config.SESSION_STARTED_VARIABLE, str(time.time() - 3600))
    trainer = build_trainer(images, budgeted)
    assert [p.epoch for p in train(trainer)] == [1]
    assert trainer.budget_stop["epoch"] == 1 and trainer.budget_stop["epochs"] == 4
    assert trainer.budget_stop["checkpoint"] == "epoch_000001" and "1 h" in trainer.budget_stop["reason"]
    run_dir = budgeted.run_dir
    assert ckpt.latest_checkpoint(run_dir).name == "epoch_000001"  # not due by checkpoint_every: forced
    assert (run_dir / "samples" / "epoch_000001.png").is_file()
    assert read_losses(run_dir)["step"].max() == 4
    assert (
        training_report.run_summary(trainer, run_dir, read_losses(run_dir))["partial"] == trainer.budget_stop
    )

    monkeypatch.delenv(config.SESSION_STARTED_VARIABLE)  # a new session, with the budget unchanged
    resumed = build_trainer(images, budgeted)
    assert [p.epoch for p in train(resumed)] == [2, 3, 4] and resumed.budget_stop is None
    assert np.array_equal(read_losses(whole.run_dir).to_numpy(), read_losses(run_dir).to_numpy())


@pytest.mark.slow
def test_train_minutes_count_training_time_over_sessions_and_end_the_run_with_a_checkpoint(
    tmp_path, monkeypatch
):
    images = training_images()
    whole = small_settings(tmp_path / "whole", epochs=5, checkpoint_every=10, sample_every=10)
    list(train(build_trainer(images, whole)))
    clock = itertools.count(0.0, 30.0)  # every reading of the clock is 30 s after the last: epochs of 30 s
    monkeypatch.setattr(training.time, "perf_counter", lambda: next(clock))

    limited = dataclasses.replace(whole, exp_id="limited", train_minutes=1.0)
    trainer = build_trainer(images, limited)
    assert [p.epoch for p in train(trainer)] == [1, 2] and training.minutes_spent(trainer)
    run_dir = limited.run_dir
    assert ckpt.latest_checkpoint(run_dir).name == "epoch_000002"  # not due by checkpoint_every: the end
    assert (run_dir / "samples" / "epoch_000002.png").is_file()
    summary = training_report.run_summary(trainer, run_dir, read_losses(run_dir))
    assert summary["train_seconds"] == 60.0 and summary["train_minutes_reached"] and not summary["partial"]
    assert list(train(build_trainer(images, limited))) == []  # the checkpoint's minutes are spent

    longer = dataclasses.replace(limited, train_minutes=1.5)  # a later session asks for more: it resumes
    resumed = build_trainer(images, longer)
    assert [p.epoch for p in train(resumed)] == [3] and resumed.train_seconds == 90.0
    assert np.array_equal(read_losses(whole.run_dir)[:12].to_numpy(), read_losses(run_dir).to_numpy())


def test_no_budget_means_no_deadline_and_a_budget_counts_from_the_pipelines_start(monkeypatch):
    assert training.budget_deadline(0) is None
    monkeypatch.setenv(config.SESSION_STARTED_VARIABLE, "1000.5")
    assert training.budget_deadline(2.0) == 1000.5 + 7200


def test_nan_weights_stop_training_and_keep_the_last_good_checkpoint(tmp_path):
    trainer = build_trainer(training_images(), small_settings(tmp_path, epochs=4, sample_every=10))
    with pytest.raises(TrainingDiverged) as caught:
        for progress in train(trainer):
            if progress.epoch == 2:
                kernel = trainer.discriminator.get_layer("d_dense").kernel
                kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    good = tmp_path / "checkpoints" / "epoch_000002"
    message = str(caught.value)
    assert "epoch 3, step 9" in message and "non-finite" in message and str(good) in message
    assert caught.value.last_checkpoint == good and good.is_dir()
    assert ckpt.latest_checkpoint(tmp_path) == good  # nothing written from the diverged state
    assert read_losses(tmp_path)["step"].max() == 8
    assert len(caught.value.pending_losses) == 4  # epoch 3's rows, kept for diagnosis, not in the CSV


def test_all_black_samples_stop_training_after_patience_grids(tmp_path):
    settings = small_settings(tmp_path, epochs=6, divergence_patience=2)
    trainer = build_trainer(training_images(), settings)
    with pytest.raises(TrainingDiverged) as caught:
        for progress in train(trainer):
            if progress.epoch == 1:
                bias = trainer.generator.get_layer("g_out_conv").bias
                bias.assign(np.full(bias.shape, -50.0, "float32"))  # tanh(-50) = -1: black
    message = str(caught.value)
    assert "epoch 3" in message and "all black" in message and "epochs [2, 3]" in message
    good = tmp_path / "checkpoints" / "epoch_000001"
    assert caught.value.last_checkpoint == good and str(good) in message
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["epoch_000001"]  # epoch 2 (black) skipped
    assert (tmp_path / "samples" / "epoch_000003.png").is_file()


def test_mixed_precision_is_bfloat16_on_cpu_and_restores_the_policy(tmp_path):
    trainer = build_trainer(training_images(), small_settings(tmp_path, precision="mixed"))
    assert trainer.dtype_policy == "mixed_bfloat16"
    assert trainer.generator.get_layer("g_conv1").compute_dtype == "bfloat16"
    assert trainer.generator.get_layer("g_conv1").kernel.dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"
    values = trainer._run_step(np.arange(BATCH)).numpy()
    assert values.dtype == np.float32 and np.isfinite(values).all()


AVX2_ONLY = frozenset({"avx", "avx2", "fma"})
NATIVE_BF16 = AVX2_ONLY | {"avx512f", "avx512_bf16"}


def as_if_on(monkeypatch, flags) -> None:
    """Make this machine look like a CPU-only one with ``flags`` to ``precision: auto``."""
    monkeypatch.setattr(precisions, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(precisions, "gpu_devices", lambda: [])


def test_auto_on_an_avx2_cpu_is_float32_without_calibrating(tmp_path, monkeypatch):
    as_if_on(monkeypatch, AVX2_ONLY)
    monkeypatch.setattr(trainers, "calibrate", lambda *args: pytest.fail("calibrated on an AVX2-only CPU"))
    trainer = build_trainer(training_images(), small_settings(tmp_path, precision="auto"))
    assert trainer.dtype_policy == "float32" and "no native bfloat16" in trainer.precision.reason
    assert trainer.params()["precision"] == "auto" and trainer.params()["dtype_policy"] == "float32"


@pytest.mark.slow
def test_auto_on_a_native_bfloat16_cpu_calibrates_and_changes_nothing_but_the_policy(tmp_path, monkeypatch):
    as_if_on(monkeypatch, NATIVE_BF16)
    auto = build_trainer(training_images(), small_settings(tmp_path, precision="auto"))
    measured = auto.precision.calibration_ms_per_step
    assert set(measured) == {"float32", "mixed_bfloat16"} and min(measured.values()) > 0
    chosen = auto.dtype_policy
    faster = measured["mixed_bfloat16"] < precisions.CALIBRATION_MARGIN * measured["float32"]
    assert chosen == ("mixed_bfloat16" if faster else "float32")
    explicit = build_trainer(training_images(), small_settings(tmp_path, precision=chosen))
    for a, b in zip(
        auto.generator.weights + auto.discriminator.weights,
        explicit.generator.weights + explicit.discriminator.weights,
        strict=True,
    ):
        assert np.array_equal(a.numpy(), b.numpy()), a.path
    assert auto.train_step(np.arange(BATCH)) == explicit.train_step(np.arange(BATCH))


@pytest.mark.slow
def test_auto_keeps_the_policy_of_the_checkpoint_it_resumes_and_restart_chooses_again(tmp_path, monkeypatch):
    first = small_settings(tmp_path, precision="mixed_bfloat16", epochs=1)
    list(train(build_trainer(training_images(), first)))
    as_if_on(monkeypatch, AVX2_ONLY)  # a fresh choice here would be float32
    resumed = build_trainer(training_images(), small_settings(tmp_path, precision="auto"))
    assert resumed.dtype_policy == "mixed_bfloat16" and "epoch_000001" in resumed.precision.reason
    assert [p.epoch for p in train(resumed)] == [2]  # resumed, not refused as incompatible
    restart = small_settings(tmp_path, precision="auto", restart_training=True)
    restarted = build_trainer(training_images(), restart)
    assert restarted.dtype_policy == "float32" and ckpt.latest_checkpoint(tmp_path) is None
    assert not (tmp_path / "losses.csv").exists()


def test_float16_uses_a_loss_scale_optimizer(tmp_path):
    trainer = build_trainer(training_images(), small_settings(tmp_path, precision="mixed_float16"))
    assert isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(np.isfinite(v) for v in trainer.train_step(np.arange(BATCH)).values())
    assert keras.config.dtype_policy().name == "float32"


def manual_losses(trainer, indices) -> list[float]:
    """The step's losses recomputed eagerly without augmentation (before the trainer's own update)."""
    real = trainer.images.numpy()[indices]
    fake = trainer.generator(latent_batch(trainer.settings.seed, trainer.step + 1, BATCH, 16), training=True)
    d_real = trainer.discriminator(real, training=True)
    d_fake = trainer.discriminator(fake, training=True)
    bce = keras.losses.binary_crossentropy
    ones, zeros = np.ones((BATCH, 1), "float32"), np.zeros((BATCH, 1), "float32")
    d_loss = np.mean(bce(ones, d_real)) + np.mean(bce(zeros, d_fake))
    return [d_loss, np.mean(bce(ones, d_fake)), np.mean(d_real), np.mean(d_fake)]


def test_diff_augment_runs_and_the_empty_policy_is_the_plain_step(tmp_path):
    images, indices = training_images(), np.arange(BATCH)
    plain = build_trainer(images, small_settings(tmp_path, d_dropout=0.0))
    expected = manual_losses(plain, indices)
    result = plain.train_step(indices)
    np.testing.assert_allclose(list(result.values()), expected, rtol=2e-5)
    augmented = build_trainer(
        images, small_settings(tmp_path, d_dropout=0.0, augment_policy="translation,cutout")
    )
    result_augmented = augmented.train_step(indices)
    assert all(np.isfinite(v) for v in result_augmented.values())
    assert result_augmented["d_real"] != result["d_real"]  # D saw augmented reals
    assert result_augmented["g_loss"] != result["g_loss"]  # ... and augmented fakes


def test_settings_are_validated_naming_the_parameter():
    with pytest.raises(ParameterError, match="'precision'.*'float16' is not one of") as caught:
        TrainConfig(precision="float16")
    assert caught.value.key == "precision"
    with pytest.raises(ParameterError, match="'augment_policy': unknown DiffAugment policy"):
        TrainConfig(augment_policy="rotate")
    with pytest.raises(ParameterError, match="'batch_size'.*below the minimum 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(ParameterError, match="'keep_epochs': expected"):
        TrainConfig(keep_epochs=[20000, 16000])


# --- small-data regularisers ------------------------------------------------------------------------------


def test_r1_penalty_of_a_linear_critic_is_half_gamma_times_its_squared_weight_norm():
    import tensorflow as tf

    weights = tf.constant(np.arange(1, 17, dtype="float32").reshape(1, 4, 4, 1) / 10)
    images = tf.constant(np.random.default_rng(0).normal(size=(3, 4, 4, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(images)
        logit_sum = tf.reduce_sum(images * weights)  # logit(x) = <w, x>: grad_x = w for every image
    penalty = losses.r1_from_gradients(tape.gradient(logit_sum, images), gamma=10.0)
    assert float(penalty) == pytest.approx(10.0 / 2 * float(np.sum(np.square(weights))), rel=1e-6)


def test_step_losses_add_each_regulariser_to_ds_cross_entropy_and_exp7_uses_hinge_and_reconstruction():
    real, fake = np.array([[0.9], [0.6]], "float32"), np.array([[0.2], [0.3]], "float32")
    real_logits, fake_logits = np.log(real / (1 - real)), np.log(fake / (1 - fake))
    gradients = np.full((2, 4, 4, 1), 0.5, "float32")
    anchors = np.array([0.5, -0.25], "float32")
    judged = losses.Judgement(real, fake, real_logits, fake_logits, gradients)
    bce = -np.mean(np.log(real)) - np.mean(np.log(1 - fake))
    plain = TrainConfig()
    d_loss, g_loss = losses.step_losses(plain, judged)
    assert float(d_loss) == pytest.approx(bce, rel=1e-5)
    assert float(g_loss) == pytest.approx(-np.mean(np.log(fake)), rel=1e-5)
    regularised = TrainConfig(r1_gamma=10.0, lecam_weight=0.1)
    d_loss, _ = losses.step_losses(regularised, judged, anchors)
    r1 = 10.0 / 2 * 16 * 0.25
    lecam = 0.1 * (np.mean((real_logits + 0.25) ** 2) + np.mean((fake_logits - 0.5) ** 2))
    assert float(d_loss) == pytest.approx(bce + r1 + lecam, rel=1e-5)
    rebuilt, targets = [np.zeros((2, 8, 8, 1), "float32")], [np.full((2, 8, 8, 1), 0.5, "float32")]
    exp7 = TrainConfig(architecture="fastgan", d_dropout=0.0, d_reconstruction_weight=2.0)
    judged = losses.Judgement(real, fake, real_logits, fake_logits, rebuilt=rebuilt, targets=targets)
    d_loss, g_loss = losses.step_losses(exp7, judged)
    hinge = np.mean(np.maximum(0, 1 - real_logits)) + np.mean(np.maximum(0, 1 + fake_logits))
    assert float(d_loss) == pytest.approx(hinge + 2.0 * 0.5, rel=1e-5)
    assert float(g_loss) == pytest.approx(-np.mean(fake_logits), rel=1e-5)


def test_lecam_penalty_is_the_squared_distance_to_the_other_sides_anchor():
    real, fake, anchors = np.array([[1.0], [3.0]]), np.array([[-1.0], [0.0]]), np.array([0.5, -0.25])
    expected = 0.1 * (np.mean((real + 0.25) ** 2) + np.mean((fake - 0.5) ** 2))
    penalty = losses.lecam_penalty(
        real.astype("float32"), fake.astype("float32"), anchors.astype("float32"), 0.1
    )
    assert float(penalty) == pytest.approx(expected, rel=1e-6)


def hand_regularisers(trainer, indices) -> tuple[float, float, np.ndarray]:
    """R1 and LeCam of the trainer's next step recomputed eagerly (no augmentation, no dropout), and the
    step's mean logits (real, fake)."""
    import tensorflow as tf

    from mammogan_lib.gan.models.discriminator import with_logits

    scored = with_logits(trainer.discriminator)
    real = tf.constant(trainer.images.numpy()[indices])
    fake = trainer.generator(latent_batch(trainer.settings.seed, trainer.step + 1, BATCH, 16), training=True)
    with tf.GradientTape() as tape:
        tape.watch(real)
        real_logits = scored(real, training=True)[0]
    gradients = tape.gradient(real_logits, real).numpy()  # one image's logit depends on that image alone
    fake_logits = scored(fake, training=True)[0].numpy()
    r1 = trainer.settings.r1_gamma / 2 * np.mean(np.sum(gradients**2, axis=(1, 2, 3)))
    anchor_real, anchor_fake = trainer.lecam_anchors.numpy()
    lecam = trainer.settings.lecam_weight * (
        np.mean((real_logits.numpy() - anchor_fake) ** 2) + np.mean((fake_logits - anchor_real) ** 2)
    )
    return float(r1), float(lecam), np.array([real_logits.numpy().mean(), fake_logits.mean()])


@pytest.mark.parametrize("regulariser", [{"r1_gamma": 10.0}, {"lecam_weight": 0.5}])
def test_each_regulariser_adds_its_hand_computed_term_to_d_loss_only(tmp_path, regulariser):
    images, indices = training_images(), np.arange(BATCH)
    plain = build_trainer(images, small_settings(tmp_path / "plain", d_dropout=0.0)).train_step(indices)
    trainer = build_trainer(images, small_settings(tmp_path / "reg", d_dropout=0.0, **regulariser))
    r1, lecam, logit_means = hand_regularisers(trainer, indices)
    result = trainer.train_step(indices)
    assert (r1 > 0) == ("r1_gamma" in regulariser) and (lecam > 0) == ("lecam_weight" in regulariser)
    assert result["d_loss"] - plain["d_loss"] == pytest.approx(r1 + lecam, rel=1e-4)
    for key in ("g_loss", "d_real", "d_fake"):  # the same first step otherwise
        assert result[key] == pytest.approx(plain[key], rel=1e-6)
    # LeCam's anchors move from 0 towards this step's mean logits, after the step used the old ones
    expected_anchors = (1 - losses.LECAM_DECAY) * logit_means if "lecam_weight" in regulariser else [0, 0]
    np.testing.assert_allclose(trainer.lecam_anchors.numpy(), expected_anchors, rtol=1e-4, atol=1e-9)


def test_spectral_norm_computes_with_each_kernel_over_its_power_iteration_singular_value():
    from mammogan_lib.gan.models import build_discriminator
    from mammogan_lib.gan.models.layers import SpectralNorm

    keras.utils.set_random_seed(0)
    plain = build_discriminator("baseline", 64, 0.125)
    normalised = build_discriminator("baseline", 64, 0.125, spectral_norm=True)
    wrappers = [layer for layer in normalised.layers if isinstance(layer, SpectralNorm)]
    assert [w.name for w in wrappers] == ["d_conv1_sn", "d_conv2_sn", "d_conv3_sn", "d_dense_sn"]
    assert [w.path for w in plain.weights] == [  # D without it: the layers and weight paths of before
        "d_conv1/kernel", "d_conv1/bias", "d_conv2/kernel", "d_conv2/bias",
        "d_conv3/kernel", "d_conv3/bias", "d_dense/kernel", "d_dense/bias",
    ]  # fmt: skip
    images = np.random.default_rng(1).uniform(-1, 1, (2, 64, 64, 1)).astype("float32")
    conv, dense = wrappers[0], wrappers[-1]
    kernel, u = conv.layer.kernel.numpy(), conv.vector_u.numpy()
    matrix = kernel.reshape(-1, kernel.shape[-1])  # one power iteration, as Miyato et al.
    v = u @ matrix.T / np.linalg.norm(u @ matrix.T)
    u = v @ matrix / np.linalg.norm(v @ matrix)
    sigma = (v @ matrix @ u.T).item()
    expected = conv.layer.convolution_op(images, kernel / sigma) + conv.layer.bias.numpy()
    np.testing.assert_allclose(conv(images, training=True), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(conv.layer.kernel.numpy(), kernel)  # the trained weight stays W
    np.testing.assert_allclose(conv.vector_u.numpy(), u, rtol=1e-5)
    u = conv.vector_u.numpy()
    inference = conv(images, training=False)  # no iteration: u stays, v is taken from it
    np.testing.assert_array_equal(conv.vector_u.numpy(), u)
    v = u @ matrix.T / np.linalg.norm(u @ matrix.T)
    expected = conv.layer.convolution_op(images, kernel / (v @ matrix @ u.T).item()) + conv.layer.bias.numpy()
    np.testing.assert_allclose(inference, expected, rtol=1e-4, atol=1e-6)
    for _ in range(30):  # the power iteration converges: sigma is W's largest singular value
        normalised(images, training=True)
    for wrapper in (wrappers[1], dense):
        kernel = wrapper.layer.kernel.numpy()
        normalised_kernel, _ = wrapper.normalised_kernel(training=False)
        matrix = np.asarray(normalised_kernel).reshape(-1, kernel.shape[-1])
        assert np.linalg.svd(matrix, compute_uv=False)[0] == pytest.approx(1, abs=0.02), wrapper.name
    # the gradient reaches W through sigma too: it is not the plain layer's gradient scaled by 1 / sigma
    import tensorflow as tf

    with tf.GradientTape() as tape:
        out = tf.reduce_sum(dense(tf.ones((1, dense.layer.kernel.shape[0])), training=False) ** 2)
    through_sigma = tape.gradient(out, dense.layer.kernel).numpy()
    kernel = dense.layer.kernel.numpy()
    normalised_kernel, _ = dense.normalised_kernel(training=False)
    sigma = float(np.abs(kernel).max() / np.abs(np.asarray(normalised_kernel)).max())
    with tf.GradientTape() as tape:
        constant_sigma = tf.reduce_sum(
            (tf.ones((1, kernel.shape[0])) @ (dense.layer.kernel / sigma) + dense.layer.bias) ** 2
        )
    assert not np.allclose(through_sigma, tape.gradient(constant_sigma, dense.layer.kernel).numpy())


@pytest.mark.slow
def test_regularised_runs_resume_exactly_and_old_checkpoints_resume_under_the_defaults(tmp_path):
    images = training_images()
    regularised = dict(r1_gamma=1.0, lecam_weight=0.1, d_spectral_norm=True, augment_policy="translation")
    whole = build_trainer(images, small_settings(tmp_path / "whole", **regularised))
    list(train(whole))
    list(train(build_trainer(images, small_settings(tmp_path / "split", epochs=1, **regularised))))
    resumed = build_trainer(images, small_settings(tmp_path / "split", **regularised))
    list(train(resumed))
    assert ckpt.read_state(ckpt.latest_checkpoint(tmp_path / "split"))["lecam_anchors"] == [
        float(v) for v in whole.lecam_anchors.numpy()
    ]
    assert np.array_equal(resumed.lecam_anchors.numpy(), whole.lecam_anchors.numpy())
    for a, b in zip(resumed.discriminator.weights, whole.discriminator.weights, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b)), a.path  # spectral norm's vector_u included
    # a checkpoint written before the regularisers existed (params.json without them) still resumes
    list(train(build_trainer(images, small_settings(tmp_path / "old", epochs=1))))
    params_file = ckpt.latest_checkpoint(tmp_path / "old") / ckpt.PARAMS_FILE
    as_written_by_format(params_file.parent, 3)
    params = json.loads(params_file.read_text())
    params_file.write_text(json.dumps({k: v for k, v in params.items() if k not in regularised}))
    assert [p.epoch for p in train(build_trainer(images, small_settings(tmp_path / "old")))] == [2]
    with pytest.raises(training.IncompatibleCheckpoint, match="r1_gamma: 0.0 in the checkpoint, 1.0 now"):
        list(train(build_trainer(images, small_settings(tmp_path / "old", epochs=3, r1_gamma=1.0))))


# --- the generator's moving average -------------------------------------------------------------------------


def test_the_generators_average_moves_towards_it_by_each_steps_decay_and_makes_the_images(tmp_path):
    from mammogan_lib.gan.backends.ema import averaged_variables, ema_decay_at

    trainer = build_trainer(training_images(), small_settings(tmp_path, g_ema_decay=0.5, epochs=1))
    average, generator = averaged_variables(trainer.generator_ema), averaged_variables(trainer.generator)
    assert any(v.path.endswith("moving_mean") for v in average)  # BatchNorm's statistics too
    expected = [v.numpy() for v in generator]  # it starts as a copy of G
    for step in (1, 2, 3):
        trainer.train_step(np.arange(BATCH))
        decay = min(0.5, (1 + step) / (10 + step))
        assert ema_decay_at(0.5, step) == decay
        expected = [decay * e + (1 - decay) * v.numpy() for e, v in zip(expected, generator, strict=True)]
        for got, want in zip(average, expected, strict=True):
            np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7, err_msg=got.path)
    assert not np.allclose(average[0].numpy(), generator[0].numpy())  # ... and lags behind it
    z = latent_batch(0, training.SAMPLE_STEP, 16, 16)
    np.testing.assert_array_equal(trainer.sample(), trainer.generator_ema(z, training=False).numpy()[..., 0])


def test_checkpoints_hold_the_average_and_load_generator_export_and_card_use_it(tmp_path):
    from mammogan_lib.gan import generate, model_card

    trainer = build_trainer(training_images(), small_settings(tmp_path, g_ema_decay=0.99))
    list(train(trainer))
    latest = ckpt.latest_checkpoint(tmp_path)
    assert (latest / "generator_ema.weights.h5").is_file() and ckpt.generator_weights_name(
        latest
    ) == "generator_ema"
    loaded = ckpt.load_generator(latest)
    for got, average in zip(loaded.weights, trainer.generator_ema.weights, strict=True):
        assert np.array_equal(got.numpy(), average.numpy()), got.path
    assert not all(
        np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(loaded.weights, trainer.generator.weights, strict=True)
    )
    exported, card = generate.export_generator(tmp_path, latest)
    z = np.random.default_rng(1).normal(size=(2, 16)).astype("float32")
    np.testing.assert_array_equal(
        generate.load_exported_generator(exported)(z).numpy(), loaded(z, training=False).numpy()
    )
    assert json.loads(card.read_text())["weights"] == model_card.describe_weights({"g_ema_decay": 0.99})
    assert "moving average" in model_card.describe_weights({"g_ema_decay": 0.99})
    # without an average, G itself, as before
    plain = tmp_path.parent / "plain"
    list(train(build_trainer(training_images(), small_settings(plain))))
    assert ckpt.generator_weights_name(ckpt.latest_checkpoint(plain)) == "generator"


# --- exp7, FastGAN-style ------------------------------------------------------------------------------------


def fastgan_settings(run_dir, **overrides) -> TrainConfig:
    values = dict(architecture="fastgan", d_dropout=0.0, latent_dim=16, width=0.125)
    return small_settings(run_dir, **{**values, **overrides})


def manual_fastgan_losses(trainer, indices) -> list[float]:
    """exp7's step losses recomputed eagerly from the step's own draws (no augmentation; before the update):
    hinge on the patch logits, plus the weighted mean absolute error of D's two reconstructions."""
    import tensorflow as tf

    from mammogan_lib.gan.models.fastgan import logits_model
    from mammogan_lib.gan.seeding import STREAM_SEED_GENERATORS, reseed, seed_states

    settings, step = trainer.settings, trainer.step + 1
    keys = seeding.step_seeds(settings.seed, step)
    reseed(seed_states(trainer.generator) + seed_states(trainer.discriminator), keys[STREAM_SEED_GENERATORS])
    fake = trainer.generator(latent_batch(settings.seed, step, BATCH, 16), training=True)
    part_seed = tf.random.experimental.stateless_split(keys[STREAM_SEED_GENERATORS], num=2)[1]
    quadrants = tf.random.stateless_uniform((BATCH,), part_seed, 0, 4, dtype=tf.int32).numpy()
    real = trainer.images.numpy()[indices]  # (B, 64, 64, 1)
    real_logits, whole, part = (
        t.numpy() for t in trainer.discriminator([tf.constant(real), tf.constant(quadrants)], training=True)
    )
    fake_logits = logits_model(trainer.discriminator)(fake, training=True).numpy()
    hinge = np.mean(np.maximum(0, 1 - real_logits)) + np.mean(np.maximum(0, 1 + fake_logits))
    corners = [(0, 0), (0, 32), (32, 0), (32, 32)]
    quarters = np.stack(
        [real[i, r : r + 32, c : c + 32] for i, (r, c) in enumerate(corners[q] for q in quadrants)]
    )
    part_target = tf.image.resize(quarters, (64, 64), method="bilinear", antialias=True).numpy()
    rebuilt = np.mean(np.abs(whole - real)) + np.mean(np.abs(part - part_target))
    d_loss = hinge + settings.d_reconstruction_weight * rebuilt
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    return [d_loss, -np.mean(fake_logits), np.mean(sigmoid(real_logits)), np.mean(sigmoid(fake_logits))]


def test_the_fastgan_step_is_the_hinge_loss_plus_ds_weighted_reconstruction_of_the_real_images(tmp_path):
    images, indices = training_images(), np.arange(BATCH)
    results = {}
    for weight in (0.0, 2.0):
        trainer = build_trainer(
            images, fastgan_settings(tmp_path / str(weight), d_reconstruction_weight=weight)
        )
        expected = manual_fastgan_losses(trainer, indices)
        results[weight] = trainer.train_step(indices)
        np.testing.assert_allclose(
            list(results[weight].values()), expected, rtol=2e-5, err_msg=f"weight {weight}"
        )
    # the same weights and draws: the reconstruction adds to D's loss alone
    assert results[2.0]["d_loss"] - results[0.0]["d_loss"] > 0.1
    assert results[2.0]["g_loss"] == pytest.approx(results[0.0]["g_loss"], rel=1e-6)


@pytest.mark.slow
def test_a_fastgan_run_with_its_average_resumes_exactly(tmp_path):
    images = training_images()
    exp7 = dict(d_spectral_norm=True, augment_policy="brightness,contrast,translation", g_ema_decay=0.99)
    whole = build_trainer(images, fastgan_settings(tmp_path / "whole", epochs=3, **exp7))
    list(train(whole))
    list(train(build_trainer(images, fastgan_settings(tmp_path / "split", epochs=1, **exp7))))
    resumed = build_trainer(images, fastgan_settings(tmp_path / "split", epochs=3, **exp7))
    list(train(resumed))
    assert np.array_equal(
        read_losses(tmp_path / "whole").to_numpy(), read_losses(tmp_path / "split").to_numpy()
    )
    for name, model in whole.models.items():
        for a, b in zip(model.weights, resumed.models[name].weights, strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b)), f"{name} {a.path}"


def test_fastgan_refuses_every_setting_it_does_not_train_with_at_once():
    with pytest.raises(ParameterError) as caught:
        TrainConfig(architecture="fastgan", backend="torch", r1_gamma=1.0, lecam_weight=0.5, conditional=True)
    message = str(caught.value)
    assert message.startswith("4 parameter problems")
    for key in ("d_dropout", "r1_gamma", "lecam_weight", "conditional"):
        assert f"parameter {key!r}" in message
    for backend in ("tensorflow", "jax", "torch"):
        assert TrainConfig(architecture="fastgan", d_dropout=0.0, backend=backend).architecture == "fastgan"
