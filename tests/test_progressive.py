"""Progressive-resolution training: the schedule, the stage models, growing, exact resume mid-stage and
mid-fade.

Tiny models (64 -> 128, width 1/8, latent 16, batch 8, 32 random images: 4 steps per epoch) on CPU, where
TensorFlow's kernels are deterministic, so "the same" means bit for bit (``np.array_equal``).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mammogan_lib.core.frameworks import import_keras

keras = import_keras()

from mammogan_lib.core.config import ParameterError, PreprocessConfig, TrainConfig  # noqa: E402
from mammogan_lib.data import preprocess  # noqa: E402
from mammogan_lib.gan import checkpoint as ckpt  # noqa: E402
from mammogan_lib.gan.models import build_models  # noqa: E402
from mammogan_lib.gan.models.progressive import FadeIn, build_stage_models, fade_layers  # noqa: E402
from mammogan_lib.gan.schedule import Phase, fade_alpha, phase_of_epoch, plan_phases  # noqa: E402
from mammogan_lib.gan.trainers import build_trainer  # noqa: E402
from mammogan_lib.gan.training import train  # noqa: E402
from tests.conftest import PROJECT_ROOT  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

BATCH = 8
STEPS_PER_EPOCH = 4  # 32 images, batch 8


def progressive_settings(run_dir, **overrides) -> TrainConfig:
    """64 -> 128 in 2 + 4 epochs: stage 0 (epochs 1-2), the fade (3-4), the grown models alone (5-6)."""
    run_dir = Path(run_dir)
    values = dict(
        exp_id=run_dir.name,
        runs_dir=str(run_dir.parent),
        architecture="baseline",
        resolution=128,
        latent_dim=16,
        width=0.125,
        batch_size=BATCH,
        epochs=6,
        progressive_resolutions=[64, 128],
        progressive_epochs=[2, 4],
        progressive_fade_fraction=0.5,
        checkpoint_every=1,
        sample_every=1,
        keep_last=10,
        keep_epochs=[],
        seed=0,
        precision="float32",
    )
    return TrainConfig(**{**values, **overrides})


def stage_images(count: int = 32, seed: int = 0) -> dict[int, np.ndarray]:
    final = np.random.default_rng(seed).uniform(-1, 1, (count, 128, 128)).astype("float32")
    return {128: final, 64: preprocess.downsample(final, 64)}


def progressive_trainer(settings: TrainConfig, images: dict[int, np.ndarray] | None = None):
    images = images or stage_images()
    return build_trainer(images[128], settings, stage_images={64: images[64]})


# --- the schedule -------------------------------------------------------------------------------------------


def test_the_phases_are_the_first_stage_then_each_later_stages_fade_and_stable_part():
    assert plan_phases([64, 128], [2, 4], 0.5) == [
        Phase(0, 0, 64, False, 1, 2),
        Phase(1, 1, 128, True, 3, 4),
        Phase(2, 1, 128, False, 5, 6),
    ]
    three = plan_phases([64, 128, 256], [3, 5, 4], 0.5)  # fades of round(2.5) = 2 and 2 epochs
    assert [(p.resolution, p.fading, p.first_epoch, p.last_epoch) for p in three] == [
        (64, False, 1, 3),
        (128, True, 4, 5),
        (128, False, 6, 8),
        (256, True, 9, 10),
        (256, False, 11, 12),
    ]
    # no fade: the new block is there at once; a fade never takes a whole stage
    assert [p.fading for p in plan_phases([64, 128], [2, 4], 0.0)] == [False, False]
    assert plan_phases([64, 128], [2, 2], 1.0)[1].epochs == 1
    assert phase_of_epoch(plan_phases([64, 128], [2, 4], 0.5), 0).index == 0
    assert [phase_of_epoch(plan_phases([64, 128], [2, 4], 0.5), e).index for e in range(1, 7)] == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]


def test_the_fade_weight_rises_linearly_step_by_step_to_one_and_is_one_outside_a_fade():
    phases = plan_phases([64, 128], [2, 4], 0.5)
    fade = phases[1]  # epochs 3-4: steps 9-16
    alphas = [fade_alpha(fade, step, STEPS_PER_EPOCH) for step in range(9, 17)]
    assert alphas == [k / 8 for k in range(1, 9)]
    assert fade_alpha(phases[0], 3, STEPS_PER_EPOCH) == fade_alpha(phases[2], 20, STEPS_PER_EPOCH) == 1.0


def test_progressive_parameters_are_checked_together_naming_each_parameter():
    base = dict(exp_id="x", resolution=128, epochs=20, progressive_resolutions=[64, 128])
    assert TrainConfig(**base, progressive_epochs=[10, 10]).progressive_epochs == [10, 10]
    with pytest.raises(ParameterError) as error:
        TrainConfig(**base, progressive_epochs=[10, 5, 5])
    assert "'progressive_epochs'" in str(error.value) and "one number of epochs per stage" in str(error.value)
    with pytest.raises(ParameterError, match=r"sum to 15 epochs but 'epochs' is 20: set epochs: 15"):
        TrainConfig(**base, progressive_epochs=[10, 5])
    with pytest.raises(ParameterError) as error:  # every problem at once
        TrainConfig(**{**base, "resolution": 256, "architecture": "stylegan"}, progressive_epochs=[10, 10])
    message = str(error.value)
    assert "2 parameter problems" in message and "'resolution' is 256" in message
    assert "'architecture'" in message and "'stylegan'" in message and "progressive_resolutions" in message
    with pytest.raises(ParameterError, match="twice the one before"):
        TrainConfig(
            **{**base, "resolution": 256, "progressive_resolutions": [64, 256]}, progressive_epochs=[10, 10]
        )
    with pytest.raises(ParameterError, match="'progressive_epochs'.*not progressive"):
        TrainConfig(exp_id="x", progressive_epochs=[10, 10])
    with pytest.raises(
        ParameterError, match="'progressive_resolutions'.*ends at 128, but 'resolution' is 64"
    ):
        PreprocessConfig(exp_id="x", resolution=64, progressive_resolutions=[64, 128])


# --- the stage models ---------------------------------------------------------------------------------------


def test_each_stage_has_its_resolution_and_the_last_one_is_the_ordinary_model():
    shapes = {}
    for resolution, fading in ((64, False), (128, True), (128, False)):
        generator, discriminator = build_stage_models("baseline", resolution, 128, fading, 16, 0.125, 0.2)
        z = np.zeros((2, 16), np.float32)
        images = np.asarray(generator(z, training=False))
        shapes[resolution, fading] = (images.shape, np.asarray(discriminator(images)).shape)
        assert len(fade_layers(generator)) == len(fade_layers(discriminator)) == int(fading)
    assert shapes == {
        (64, False): ((2, 64, 64, 1), (2, 1)),
        (128, True): ((2, 128, 128, 1), (2, 1)),
        (128, False): ((2, 128, 128, 1), (2, 1)),
    }
    ordinary = build_models("baseline", 128, 16, 0.125, 0.2)
    final = build_stage_models("baseline", 128, 128, False, 16, 0.125, 0.2)
    for a, b in zip(ordinary, final, strict=True):
        assert [(w.path, tuple(w.shape)) for w in a.weights] == [(w.path, tuple(w.shape)) for w in b.weights]
    # the first stage is made of the final model's layers: its first G blocks, its last D blocks
    generator, discriminator = build_stage_models("baseline", 64, 128, False, 16, 0.125, 0.2)
    final_shapes = {w.path: tuple(w.shape) for model in final for w in model.weights}
    own = {
        w.path for model in (generator, discriminator) for w in model.weights if w.path not in final_shapes
    }
    assert {path.split("/")[0] for path in own} == {"g_out_conv_64", "d_from_image_64"}
    assert all(final_shapes[w.path] == tuple(w.shape) for w in generator.weights if w.path in final_shapes)
    assert not any(w.path.startswith("d_conv1/") for w in discriminator.weights)


def test_the_fade_blends_the_upsampled_old_head_into_the_new_one():
    generator, _ = build_stage_models("baseline", 128, 128, True, 16, 0.125, 0.2)
    (fade,) = fade_layers(generator)
    old = keras.Model(generator.input, generator.get_layer("g_fade_up_128").output)
    new = keras.Model(generator.input, generator.get_layer("g_out").output)
    z = np.random.default_rng(0).normal(size=(2, 16)).astype(np.float32)
    for alpha in (0.0, 0.25, 1.0):
        fade.alpha.assign(alpha)
        expected = (1 - alpha) * np.asarray(old(z)) + alpha * np.asarray(new(z))
        np.testing.assert_allclose(np.asarray(generator(z, training=False)), expected, atol=1e-6)
    assert isinstance(fade, FadeIn) and not fade.trainable_weights


# --- growing ------------------------------------------------------------------------------------------------


def test_growing_carries_every_shared_layer_and_its_adam_moments_exactly(tmp_path):
    trainer = progressive_trainer(progressive_settings(tmp_path / "run"))
    for _ in range(2):
        trainer.run_epoch()
    before = {
        name: {w.path: w.numpy().copy() for w in model.weights} for name, model in trainer.models.items()
    }
    moments = {
        name: {v.name: v.numpy().copy() for v in opt.variables} for name, opt in trainer.optimizers.items()
    }
    # the growth itself, before the next epoch's first step
    trainer.growth.enter_phase(trainer, trainer.growth.phases[1])
    assert trainer.generator.output_shape == (None, 128, 128, 1)
    for name, model in trainer.models.items():
        carried = [w for w in model.weights if w.path in before[name]]
        assert len(carried) == len(before[name])  # nothing of the old stage lost
        for weight in carried:
            assert np.array_equal(weight.numpy(), before[name][weight.path]), weight.path
    for name, optimizer in trainer.optimizers.items():
        old = moments[name]
        shared = [v for v in optimizer.variables if v.name in old]
        assert {v.name for v in shared} == set(old)
        for variable in shared:
            assert np.array_equal(variable.numpy(), old[variable.name]), variable.name
        new = [v for v in optimizer.variables if v.name not in old]
        assert new and all(not v.numpy().any() for v in new)  # the new layers' moments start at zero
    assert int(trainer.g_optimizer.iterations.numpy()) == 2 * STEPS_PER_EPOCH


def test_new_layers_repeat_from_the_seed_and_stage(tmp_path):
    grown = []
    for name in ("a", "b"):
        trainer = progressive_trainer(progressive_settings(tmp_path / name))
        trainer.growth.enter_phase(trainer, trainer.growth.phases[1])
        grown.append(trainer.generator.get_layer("g_conv4").get_weights()[0])
    assert np.array_equal(*grown)


# --- checkpoints and resume ---------------------------------------------------------------------------------


def read_losses(run_dir) -> pd.DataFrame:
    return pd.read_csv(Path(run_dir) / "losses.csv")


RESUME_SCRIPT = """
import json, sys
import numpy as np
from mammogan_lib.core.config import TrainConfig
from mammogan_lib.gan.trainers import build_trainer
from mammogan_lib.gan.training import train
settings = TrainConfig(**json.loads(sys.argv[1]))
images = np.load(sys.argv[2])
trainer = build_trainer(images["final"], settings, stage_images={64: images["low"]})
print(json.dumps([p.epoch for p in train(trainer)]))
"""


def resume_in_new_process(settings: TrainConfig, images_path: Path) -> list[int]:
    """Run train() in a fresh Python process (nothing shared with this one but the run folder)."""
    done = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, json.dumps(dataclasses.asdict(settings)), str(images_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_kill_and_resume_mid_stage_and_mid_fade_gives_the_losses_of_an_uninterrupted_run(tmp_path):
    # 3 epochs at 64 px, then 6 at 128 px: the fade over epochs 4-6, the grown models alone over 7-9
    schedule = dict(epochs=9, progressive_epochs=[3, 6], checkpoint_every=2)
    images = stage_images()
    np.savez(tmp_path / "images.npz", final=images[128], low=images[64])
    whole = progressive_trainer(progressive_settings(tmp_path / "whole", **schedule), images)
    assert [p.epoch for p in train(whole)] == list(range(1, 10))

    split = progressive_settings(tmp_path / "split", **schedule)
    for killed in (3, 5):  # after an epoch no checkpoint saved: mid-stage (resumes at 2), mid-fade (at 4)
        for progress in train(progressive_trainer(split, images)):
            if progress.epoch == killed:
                break
    checkpoints = split.run_dir / "checkpoints"
    assert ckpt.latest_checkpoint(split.run_dir) == checkpoints / "epoch_000004"
    assert ckpt.read_state(checkpoints / "epoch_000002")["stage_resolution"] == 64
    state = ckpt.read_state(checkpoints / "epoch_000004")
    assert (state["progressive_stage"], state["stage_resolution"], state["fading"]) == (1, 128, True)
    assert state["fade_alpha"] == pytest.approx(4 / 12)  # 4 of the fade's 12 steps done
    assert resume_in_new_process(split, tmp_path / "images.npz") == [5, 6, 7, 8, 9]

    losses_whole, losses_split = read_losses(whole.settings.run_dir), read_losses(split.run_dir)
    assert losses_split["step"].tolist() == list(range(1, 9 * STEPS_PER_EPOCH + 1))
    assert np.array_equal(losses_whole.to_numpy(), losses_split.to_numpy())  # bit for bit
    # after the last fade the checkpoint is an ordinary one: the ordinary models load it, and hold exactly
    # the uninterrupted run's weights
    final = checkpoints / "epoch_000009"
    ordinary = dict(
        zip(("generator", "discriminator"), build_models("baseline", 128, 16, 0.125, 0.2), strict=True)
    )
    for name, model in ordinary.items():
        model.load_weights(str(final / f"{name}.weights.h5"))
        for a, b in zip(whole.models[name].weights, model.weights, strict=True):
            assert np.array_equal(a.numpy(), b.numpy()), a.path
    # an earlier stage's checkpoint generates at the run's resolution (its 64 px images upsampled)
    assert ckpt.load_generator(checkpoints / "epoch_000002").output_shape == (None, 128, 128, 1)
    assert [
        (s["resolution"], s["epochs"], s["fade_epochs"]) for s in whole.progressive_record()["stages"]
    ] == [
        (64, [1, 3], 0),
        (128, [4, 9], 3),
    ]


@pytest.mark.slow
def test_a_resume_with_other_stages_or_other_images_is_refused(tmp_path):
    images, short = stage_images(), dict(epochs=3, progressive_epochs=[1, 2])
    assert [
        p.epoch for p in train(progressive_trainer(progressive_settings(tmp_path / "run", **short), images))
    ][:1]
    no_fade = progressive_settings(tmp_path / "run", **short, progressive_fade_fraction=0.0)
    with pytest.raises(ValueError, match="progressive_fade_fraction"):
        list(train(progressive_trainer(no_fade, images)))
    other_low = {**images, 64: np.flip(images[64], axis=2).copy()}  # the same final images, other 64 px ones
    with pytest.raises(ValueError, match="data_fingerprint"):
        list(train(progressive_trainer(progressive_settings(tmp_path / "run", **short), other_low)))


def test_02_writes_each_stage_cache_box_filtered_from_the_same_rows(tmp_path):
    cache = tmp_path / "cache"
    images = np.random.default_rng(0).uniform(-1, 1, (3, 128, 128)).astype(np.float32)
    cache.mkdir()
    np.save(cache / "images.npy", images)
    pd.DataFrame({"image_id": ["a", "b", "c"], "array_row": [0, 1, 2]}).to_csv(
        cache / "index.csv", index=False
    )
    (cache / "summary.json").write_text('{"resolution": 128, "written": 3}')
    folders = preprocess.write_stage_caches(cache, [64, 128])
    assert folders["128"] == str(cache)
    low, index = preprocess.load_cache(Path(folders["64"]))
    assert low.shape == (3, 64, 64) and index["image_id"].tolist() == ["a", "b", "c"]
    np.testing.assert_allclose(low[1, 3, 5], images[1, 6:8, 10:12].mean(), rtol=1e-6)
    assert preprocess.downsample(-np.ones((1, 128, 128), np.float32), 64).min() == -1.0  # background stays -1
