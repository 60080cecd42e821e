"""Checkpoints: atomic folders, retention, optimiser state round trip, compatibility, load_generator."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mammogan_lib.core.frameworks import import_keras

keras = import_keras()

from mammogan_lib.core import config  # noqa: E402
from mammogan_lib.gan import checkpoint as ckpt  # noqa: E402
from mammogan_lib.gan.models import build_discriminator  # noqa: E402
from mammogan_lib.gan.trainers import build_trainer  # noqa: E402
from mammogan_lib.gan.training import IncompatibleCheckpoint, latent_batch, train  # noqa: E402
from tests.test_training import as_written_by_format, training_images  # noqa: E402
from tests.test_training import small_settings as two_epoch_settings  # noqa: E402

# keras 3.15's own save_weights calls np.array(variable); numpy 2 warns about its __array__ signature
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def small_settings(run_dir, **overrides):
    """The training tests' tiny settings, one epoch by default."""
    return two_epoch_settings(run_dir, **{"epochs": 1, **overrides})


def fake_checkpoints(run_dir, epochs) -> None:
    for epoch in epochs:
        folder = ckpt.checkpoints_dir(run_dir) / ckpt.checkpoint_name(epoch)
        folder.mkdir(parents=True)
        (folder / ckpt.STATE_FILE).write_text(json.dumps({"epoch": epoch, "step": 0}))


def remaining_epochs(run_dir) -> list[int]:
    return [ckpt.checkpoint_epoch(p) for p in ckpt.list_checkpoints(run_dir)]


@pytest.mark.parametrize(
    ("keep_last", "keep_epochs", "expected"),
    [
        (2, [], [90, 100]),
        (1, [20, 40], [20, 30, 40, 100]),
        (1, [70, 70], [70, 100]),
        (3, [60, 100], [60, 70, 80, 90, 100]),
    ],
)
def test_retention_keeps_the_last_and_the_chosen_epochs(tmp_path, keep_last, keep_epochs, expected):
    fake_checkpoints(tmp_path, range(10, 101, 10))
    ckpt.apply_retention(tmp_path, keep_last, keep_epochs)
    assert remaining_epochs(tmp_path) == expected


def test_retention_during_training(tmp_path):
    settings = small_settings(tmp_path, epochs=5, keep_last=2, keep_epochs=[2, 2], sample_every=5)
    list(train(build_trainer(training_images(), settings)))
    assert remaining_epochs(tmp_path) == [2, 4, 5]


def test_retention_and_ranges_are_checked():
    with pytest.raises(ValueError, match="keep_last"):
        ckpt.apply_retention("unused", 0)
    with pytest.raises(ValueError, match="start <= end"):
        config.keep_range([5, 1])
    with pytest.raises(ValueError, match=r"expected \[\] or \[start, end\].*got \[5\]"):
        config.keep_range([5])
    assert config.keep_range([16000, 20000]) == (16000, 20000) and config.keep_range([]) is None


def test_partial_folders_are_ignored_and_cleaned_on_the_next_save(tmp_path):
    fake_checkpoints(tmp_path, [1])
    root = ckpt.checkpoints_dir(tmp_path)
    (root / "epoch_000002.tmp-4242").mkdir()  # a killed write
    (root / "epoch_000003").mkdir()  # no state.json: never a complete checkpoint
    assert ckpt.latest_checkpoint(tmp_path) == root / "epoch_000001"
    trainer = build_trainer(training_images(), small_settings(tmp_path))
    trainer.epoch = 4
    path = ckpt.save_checkpoint(tmp_path, 4, trainer.models, trainer.optimizers, trainer.state(), {})
    assert path == root / "epoch_000004" and ckpt.latest_checkpoint(tmp_path) == path
    assert not (root / "epoch_000002.tmp-4242").exists()
    assert sorted(p.name for p in root.iterdir()) == ["epoch_000001", "epoch_000003", "epoch_000004"]
    assert ckpt.read_state(path)["epoch"] == 4
    ckpt.save_checkpoint(tmp_path, 4, trainer.models, trainer.optimizers, trainer.state(), {"again": 1})
    assert ckpt.read_params(path) == {"again": 1}  # an existing epoch is replaced


@pytest.mark.parametrize("precision", ["float32", "mixed_float16"])
def test_optimizer_state_round_trip(tmp_path, precision):
    settings = small_settings(tmp_path, precision=precision)
    trainer = build_trainer(training_images(), settings)
    trainer.run_epoch()
    path = ckpt.save_checkpoint(
        tmp_path, 1, trainer.models, trainer.optimizers, trainer.state(), trainer.params()
    )
    fresh = build_trainer(training_images(), settings)
    loaded = ckpt.load_checkpoint(path, fresh.models, fresh.optimizers)
    assert (loaded.epoch, loaded.step) == (1, 4)
    for name, optimizer in trainer.optimizers.items():
        restored = fresh.optimizers[name]
        assert int(restored.iterations.numpy()) == 4
        saved_values = [v.numpy() for v in optimizer.variables]
        assert len(saved_values) == len(restored.variables)
        for value, variable in zip(saved_values, restored.variables, strict=True):
            assert np.array_equal(value, variable.numpy()), variable.path
    if precision == "mixed_float16":  # the loss scale travels too
        paths = [v.path for v in fresh.g_optimizer.variables]
        assert any("dynamic_scale" in p for p in paths) and any("step_counter" in p for p in paths)


def test_optimizer_state_of_another_precision_is_refused(tmp_path):
    trainer = build_trainer(training_images(), small_settings(tmp_path))
    path = ckpt.save_checkpoint(tmp_path, 1, trainer.models, trainer.optimizers, trainer.state(), {})
    other = build_trainer(training_images(), small_settings(tmp_path, precision="mixed_float16"))
    with pytest.raises(ckpt.CheckpointError, match="optimiser variables but the optimiser has"):
        ckpt.load_optimizer(other.g_optimizer, path / "g_optimizer.npz")


def test_incompatible_parameters_name_the_key_and_force_starts_again(tmp_path):
    list(train(build_trainer(training_images(), small_settings(tmp_path))))
    other = build_trainer(training_images(), small_settings(tmp_path, seed=1, epochs=2))
    with pytest.raises(IncompatibleCheckpoint, match=r"\(seed\).*exp_id.*restart_training: true"):
        list(train(other))
    changed_data = build_trainer(training_images(seed=5), small_settings(tmp_path, epochs=2))
    with pytest.raises(IncompatibleCheckpoint, match="data_fingerprint"):
        list(train(changed_data))
    assert [p.epoch for p in train(other, force=True)] == [1, 2]
    assert ckpt.read_params(ckpt.latest_checkpoint(tmp_path))["seed"] == 1


def test_load_generator_rebuilds_the_trained_generator(tmp_path):
    trainer = build_trainer(training_images(), small_settings(tmp_path, architecture="stylegan"))
    list(train(trainer))
    generator = ckpt.load_generator(ckpt.latest_checkpoint(tmp_path))
    assert generator.name == "generator_stylegan"
    z = latent_batch(0, 0, 4, 16)
    for model in (generator, trainer.generator):  # same noise draws in both (NoiseInjection)
        for state in [v for v in model.variables if "seed_generator_state" in v.path]:
            state.assign([1, 0])
    expected = trainer.generator(z, training=False).numpy()
    assert np.array_equal(generator(z, training=False).numpy(), expected)


@pytest.mark.parametrize("architecture", ["baseline", pytest.param("stylegan", marks=pytest.mark.slow)])
def test_a_format_1_checkpoint_with_separate_upsampling_layers_still_resumes_and_generates(
    tmp_path, architecture
):
    from mammogan_lib.gan.models import build_generator

    settings = small_settings(tmp_path, architecture=architecture)
    trainer = build_trainer(training_images(), settings)
    list(train(trainer))
    latest = ckpt.latest_checkpoint(tmp_path)
    # rewrite it as the previous format wrote it: a two-layer (UpSampling2D + Conv2D) generator's file
    old_form = build_generator(architecture, 64, 16, 0.125, separate_upsampling=True)
    old_form.set_weights(trainer.generator.get_weights())
    old_form.save_weights(str(latest / "generator.weights.h5"))
    as_written_by_format(latest, 1)
    with pytest.raises(ValueError):  # Keras alone cannot read it into the one-layer generator
        build_generator(architecture, 64, 16, 0.125).load_weights(str(latest / "generator.weights.h5"))

    resumed = build_trainer(training_images(), dataclasses.replace(settings, epochs=2))
    assert [p.epoch for p in train(resumed)] == [2]  # resumed from the format-1 checkpoint, not restarted
    for a, b in zip(ckpt.load_generator(latest).weights, trainer.generator.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.slow
def test_a_spectrally_normalised_d_of_the_previous_format_still_resumes(tmp_path):
    settings = small_settings(tmp_path, d_spectral_norm=True)
    trainer = build_trainer(training_images(), settings)
    list(train(trainer))
    latest = ckpt.latest_checkpoint(tmp_path)
    # rewrite it as the previous format wrote it: D's layers were Keras's SpectralNormalization
    old_form = ckpt.with_keras_spectral_normalization(trainer.discriminator)
    assert sum(isinstance(layer, keras.layers.SpectralNormalization) for layer in old_form.layers) == 4
    trained = {w.path: w.value for w in trainer.discriminator.weights}
    assert [w.path for w in old_form.weights] != list(trained)  # the same variables in another order
    for variable in old_form.weights:
        variable.assign(trained[variable.path])
    old_form.save_weights(str(latest / "discriminator.weights.h5"))
    as_written_by_format(latest, 2)
    fresh = build_discriminator("baseline", 64, width=0.125, spectral_norm=True)
    with pytest.raises(ValueError):  # Keras alone cannot read it into the new layers
        fresh.load_weights(str(latest / "discriminator.weights.h5"))
    ckpt.load_model_weights(fresh, latest, "discriminator")
    for a, b in zip(fresh.weights, trainer.discriminator.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)  # vector_u included
    resumed = build_trainer(training_images(), dataclasses.replace(settings, epochs=2))
    assert [p.epoch for p in train(resumed)] == [2]  # resumed from the format-2 checkpoint, not restarted


def test_keras_weight_files_do_not_hold_dropout_seed_state(tmp_path):
    """Why the training step re-seeds every SeedGenerator from (seed, step) instead of saving them."""
    model = build_discriminator("baseline", 64, width=0.125, dropout=0.2)
    states = [v for v in model.variables if "seed_generator_state" in v.path]
    assert states
    for state in states:
        state.assign([12345, 678])
    model.save_weights(str(tmp_path / "d.weights.h5"))
    reloaded = build_discriminator("baseline", 64, width=0.125, dropout=0.2)
    reloaded.load_weights(str(tmp_path / "d.weights.h5"))
    reloaded_states = [v.numpy().tolist() for v in reloaded.variables if "seed_generator_state" in v.path]
    assert [12345, 678] not in reloaded_states


def test_every_training_parameter_is_either_compared_on_resume_or_allowed_to_change():
    """A new TrainConfig field lands in COMPATIBILITY_KEYS unless RESUMABLE_CHANGES names it: this test then
    asks for the decision."""
    from mammogan_lib.gan.training import COMPATIBILITY_KEYS

    assert set(COMPATIBILITY_KEYS) == {
        "architecture",
        "resolution",
        "latent_dim",
        "width",
        "d_dropout",
        "lr_g",
        "lr_d",
        "beta1",
        "batch_size",
        "steps_per_epoch",
        "seed",
        "augment_policy",
        "r1_gamma",
        "d_spectral_norm",
        "lecam_weight",
        "g_ema_decay",  # the average's past steps were taken with its decay
        "d_reconstruction_weight",
        "conditional",
        "progressive_resolutions",  # a checkpoint's stage and models depend on the schedule
        "progressive_epochs",
        "progressive_fade_fraction",
        "backend",  # another backend draws other randomness: the resume would not be exact
        "dtype_policy",
        "n_images",
        "data_fingerprint",
        "classes",
    }


# --- checkpoints that prove themselves ------------------------------------------------------------------


def damage(checkpoint_dir: Path, how: str) -> str:
    """Damage one file of a checkpoint as disks, copies and hands do; return the file's name."""
    if how == "truncated weights":
        path = checkpoint_dir / "generator.weights.h5"
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "changed bytes in the weights":  # the same size: only the hash can tell
        path = checkpoint_dir / "generator.weights.h5"
        data = bytearray(path.read_bytes())
        middle, length = len(data) // 2, min(20_000, len(data) // 4)
        data[middle : middle + length] = np.random.default_rng(0).bytes(length)
        path.write_bytes(bytes(data))
    elif how == "garbage optimiser":
        path = checkpoint_dir / "g_optimizer.npz"
        path.write_bytes(b"not an archive at all")
    elif how == "truncated state":
        path = checkpoint_dir / ckpt.STATE_FILE
        path.write_text(path.read_text()[:20])
    elif how == "manifest removed":
        path = checkpoint_dir / ckpt.MANIFEST_FILE
        path.unlink()
    else:
        raise ValueError(how)
    return path.name


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """A two-epoch run with a checkpoint after each epoch, its losses and its final weights."""
    run_dir = tmp_path_factory.mktemp("two_checkpoints")
    trainer = build_trainer(training_images(), small_settings(run_dir, epochs=2))
    list(train(trainer))
    weights = {name: [w.numpy() for w in model.weights] for name, model in trainer.models.items()}
    return run_dir, (run_dir / "losses.csv").read_text(), weights


def test_the_manifest_lists_every_file_with_its_size_and_sha256(two_checkpoints):
    run_dir, _, _ = two_checkpoints
    latest = ckpt.latest_checkpoint(run_dir)
    manifest = json.loads((latest / ckpt.MANIFEST_FILE).read_text())["files"]
    on_disk = sorted(p.name for p in latest.iterdir() if p.name != ckpt.MANIFEST_FILE)
    assert sorted(manifest) == on_disk and ckpt.STATE_FILE in manifest
    state = latest / ckpt.STATE_FILE
    assert manifest[ckpt.STATE_FILE] == {
        "bytes": state.stat().st_size,
        "sha256": hashlib.sha256(state.read_bytes()).hexdigest(),
    }
    assert ckpt.checkpoint_problems(latest) == [] and ckpt.verify_checkpoint(latest) == latest


@pytest.mark.parametrize(
    ("how", "problem"),
    [
        ("truncated weights", r"generator\.weights\.h5 has [\d,]+ bytes, its manifest says [\d,]+"),
        (
            "changed bytes in the weights",
            r"generator\.weights\.h5's bytes differ from its manifest's SHA",
        ),
        ("garbage optimiser", r"g_optimizer\.npz has 21 bytes"),
        ("truncated state", r"state\.json has 20 bytes"),
        ("manifest removed", r"manifest\.json is missing"),
    ],
)
def test_a_damaged_checkpoint_is_named_with_its_file_and_set_aside_not_deleted(
    two_checkpoints, tmp_path, capsys, how, problem
):
    source, _, _ = two_checkpoints
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    newest, previous = (ckpt.checkpoints_dir(run_dir) / name for name in ("epoch_000002", "epoch_000001"))
    damage(newest, how)
    with pytest.raises(ckpt.DamagedCheckpoint, match=problem):
        ckpt.load_generator(newest)  # what 04 and the export load
    assert ckpt.newest_good_checkpoint(run_dir) == previous
    warning = capsys.readouterr().out.strip().splitlines()
    assert (
        len(warning) == 1
        and re.search(problem, warning[0])
        and "set aside as epoch_000002.damaged-" in warning[0]
    )
    (aside,) = ckpt.checkpoints_dir(run_dir).glob("epoch_000002.damaged-*")
    written = {p.name for p in (ckpt.checkpoints_dir(source) / "epoch_000002").iterdir()}
    assert {p.name for p in aside.iterdir()} == written - (
        {ckpt.MANIFEST_FILE} if how == "manifest removed" else set()
    )
    assert ckpt.list_checkpoints(run_dir) == [previous] and not newest.exists()
    assert ckpt.checkpoint_problems(aside)  # kept as it was found, for whoever wants to look


@pytest.mark.parametrize(
    "how",
    [
        "changed bytes in the weights",
        pytest.param("an unreadable checkpoint of the format before manifests", marks=pytest.mark.slow),
    ],
)
def test_a_run_whose_newest_checkpoint_is_damaged_resumes_exactly_from_the_one_before(
    two_checkpoints, tmp_path, capsys, how
):
    source, losses, weights = two_checkpoints
    run_dir = tmp_path / "run"
    shutil.copytree(source, run_dir)
    newest = ckpt.checkpoints_dir(run_dir) / "epoch_000002"
    if how == "changed bytes in the weights":
        damage(newest, how)
    else:  # nothing to verify it against: it fails while loading, and is set aside all the same
        as_written_by_format(newest, 3)
        damage(newest, "truncated weights")
    resumed = build_trainer(training_images(), small_settings(run_dir, epochs=2))
    assert [p.epoch for p in train(resumed)] == [2]  # epoch 2 trained again from epoch 1's checkpoint
    assert "epoch_000002" in capsys.readouterr().out
    assert (run_dir / "losses.csv").read_text() == losses  # bit for bit, as if nothing had happened
    for name, model in resumed.models.items():
        for value, variable in zip(weights[name], model.weights, strict=True):
            assert np.array_equal(value, variable.numpy()), variable.path
    assert ckpt.checkpoint_problems(newest) == [] and len(list(newest.parent.glob("*.damaged-*"))) == 1
