"""Class-conditional generation: labels from 01's manifest through 02, conditional G and D of every
architecture, class draws per (seed, step), exact resume with conditional training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mammogan_lib.core.frameworks import import_keras

keras = import_keras()

from mammogan_lib.data import conditioning, filtering  # noqa: E402
from mammogan_lib.data.conditioning import ClassLabels  # noqa: E402
from mammogan_lib.gan import checkpoint as ckpt  # noqa: E402
from mammogan_lib.gan import (  # noqa: E402
    seeding,
    trainers,
    training,  # noqa: E402
)
from mammogan_lib.gan.models import ARCHITECTURES, build_models  # noqa: E402
from mammogan_lib.gan.models.discriminator import with_logits  # noqa: E402
from tests.test_training import small_settings, training_images  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

ARCHS = sorted(name for name, entry in ARCHITECTURES.items() if entry.build_own_discriminator is None)
"""The architectures with a class-conditional form (exp7's fastgan has none: its configuration refuses it)."""
LATENT = 16


def latents(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(count, LATENT)).astype("float32")


# --- labels: 01's manifest -> 02's split ---------------------------------------------------------------


def catalogue_row(types: str, pathologies: str) -> dict:
    count = len(types.split(";"))
    return {
        "image_id": f"{types}|{pathologies}",
        "n_findings": count,
        "finding_types": types,
        "finding_pathologies": pathologies,
        "assessments": "",
        "label_basis": "biopsy",
    }


def test_the_manifest_records_the_types_each_image_was_selected_for():
    rows = pd.DataFrame(
        [
            catalogue_row("mass", "MALIGNANT"),
            catalogue_row("mass;calcification", "BENIGN;MALIGNANT"),  # selected for its calcification only
            catalogue_row("mass;calcification", "MALIGNANT;MALIGNANT"),
            catalogue_row("calcification;calcification", "MALIGNANT;MALIGNANT"),
            catalogue_row("mass", "BENIGN"),
        ]
    )
    selection = filtering.Selection("MALIGNANT", ("mass", "calcification"))
    wanted = [filtering.wanted_types(row, selection) for _, row in rows.iterrows()]
    assert wanted == [["mass"], ["calcification"], ["mass", "calcification"], ["calcification"], []]
    assert filtering.selection_mask(rows, selection).tolist() == [True, True, True, True, False]


def test_images_get_their_one_selected_type_and_mixed_ones_none_with_the_counts_adding_up():
    manifest = pd.DataFrame(
        {
            "image_id": ["a", "b", "c", "d", "e"],
            conditioning.SELECTED_TYPES_COLUMN: ["mass", "calcification", "mass+calcification", "mass", ""],
        }
    )
    split = pd.DataFrame({"image_id": ["a", "b", "c", "d", "e"], "split": ["train"] * 4 + ["heldout"]})
    labelled, record = conditioning.label_split(split, manifest)
    assert labelled[conditioning.CLASS_COLUMN].tolist() == ["mass", "calcification", "", "mass", ""]
    assert (
        labelled["class_reason"][2]
        == "selected findings of several types (mass+calcification): no single class"
    )
    assert record["classes"] == ["mass", "calcification"]  # the finding-type order, not alphabetical
    assert record["per_class"] == {"mass": 2, "calcification": 1}
    assert record["unlabelled_by_reason"] == {
        conditioning.NO_SELECTED_TYPE: ["e"],
        "selected findings of several types (mass+calcification): no single class": ["c"],
    }
    assert record["labelled"] + record["unlabelled"] == record["images"] == 5

    images = np.arange(5, dtype="float32")[:, None, None] * np.ones((5, 2, 2), "float32")
    train_rows = labelled[labelled["split"] == "train"].reset_index(drop=True)
    kept, labels, left_out = conditioning.labelled_training_set(images[:4], train_rows)
    assert kept[:, 0, 0].tolist() == [0, 1, 3]
    assert labels.classes == ("mass", "calcification") and labels.labels.tolist() == [0, 1, 0]
    assert labels.counts == [2, 1] and labels.priors.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert left_out["image_id"].tolist() == ["c"]


def test_a_split_without_labels_is_refused_naming_the_parameter_and_the_fix():
    rows = pd.DataFrame({"image_id": ["a"], "split": ["train"]})
    with pytest.raises(
        ValueError, match="'conditional' is true, but split.csv has no finding_class.*02_preprocess"
    ):
        conditioning.labelled_training_set(np.zeros((1, 2, 2), "float32"), rows)
    with pytest.raises(ValueError, match=r"\['asymmetry'\] are not among the classes"):
        ClassLabels.from_names(["mass", "asymmetry"], ["mass", "calcification"])


# --- the models -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("architecture", ARCHS)
def test_conditional_models_of_every_architecture_take_a_class_and_it_changes_the_image(architecture):
    generator, discriminator = build_models(architecture, 64, LATENT, width=0.125, n_classes=2)
    assert [tuple(shape) for shape in generator.input_shape] == [(None, LATENT), (None,)]
    assert [tuple(shape) for shape in discriminator.input_shape] == [(None, 64, 64, 1), (None,)]
    z = np.repeat(latents(1), 3, axis=0)  # the same latent three times
    classes = np.array([0, 1, 0], "int32")
    images = generator([z, classes], training=False).numpy()
    assert images.shape == (3, 64, 64, 1)
    np.testing.assert_array_equal(images[0], images[2])  # same latent, same class: same image
    assert np.abs(images[0] - images[1]).max() > 1e-4  # same latent, other class: another image
    probabilities = discriminator([images, classes], training=False).numpy()
    assert probabilities.shape == (3, 1) and ((probabilities > 0) & (probabilities < 1)).all()
    assert generator.get_layer("g_class_embedding").input_dim == 2


@pytest.mark.parametrize("architecture", ARCHS)
def test_unconditional_models_are_unchanged(architecture):
    generator, discriminator = build_models(architecture, 64, LATENT, width=0.125)
    assert tuple(generator.input_shape) == (None, LATENT)
    assert tuple(discriminator.input_shape) == (None, 64, 64, 1)
    names = [layer.name for model in (generator, discriminator) for layer in model.layers]
    assert not [name for name in names if "class" in name or "projection" in name]


def test_the_projection_term_is_the_inner_product_of_the_class_embedding_and_the_features():
    _, discriminator = build_models("baseline", 64, LATENT, width=0.125, d_dropout=0.0, n_classes=2)
    projection = discriminator.get_layer("d_class_projection")
    projection.embeddings.assign(np.random.default_rng(1).normal(size=projection.embeddings.shape))
    images = np.random.default_rng(2).uniform(-1, 1, (4, 64, 64, 1)).astype("float32")
    classes = np.array([0, 1, 1, 0], "int32")
    features_model = keras.Model(discriminator.inputs, discriminator.get_layer("d_flatten").output)
    features = features_model([images, classes], training=False).numpy().astype(np.float64)
    kernel, bias = (np.asarray(w, np.float64) for w in discriminator.get_layer("d_dense").weights)
    embeddings = projection.embeddings.numpy().astype(np.float64)
    by_hand = features @ kernel + bias + np.sum(embeddings[classes] * features, axis=1, keepdims=True)
    logits, probabilities = with_logits(discriminator)([images, classes], training=False)
    np.testing.assert_allclose(logits.numpy(), by_hand, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probabilities.numpy(), 1 / (1 + np.exp(-by_hand)), rtol=1e-4, atol=1e-6)


# --- training -------------------------------------------------------------------------------------------


def test_class_draws_are_a_function_of_seed_and_step_with_the_training_shares():
    priors = np.array([0.75, 0.25])
    first = seeding.label_batch(0, 5, 400, priors).numpy()
    assert first.dtype == np.int32 and set(first.tolist()) == {0, 1}
    np.testing.assert_array_equal(first, seeding.label_batch(0, 5, 400, priors).numpy())
    assert not np.array_equal(first, seeding.label_batch(0, 6, 400, priors).numpy())
    assert not np.array_equal(first, seeding.label_batch(1, 5, 400, priors).numpy())
    assert np.mean(first == 0) == pytest.approx(0.75, abs=0.07)
    # a draw for a larger (global) batch starts with the rows of the smaller one
    np.testing.assert_array_equal(seeding.label_batch(0, 5, 800, priors).numpy()[:400], first)


def conditional_labels(count: int = 32) -> ClassLabels:
    return ClassLabels.from_names([("mass", "calcification")[i % 3 == 0] for i in range(count)])


def test_a_conditional_trainer_needs_labels_and_saves_its_classes(tmp_path):
    images = training_images()
    with pytest.raises(ValueError, match="'conditional' is true but no class labels"):
        trainers.build_trainer(images, small_settings(tmp_path / "none", conditional=True))
    trainer = trainers.build_trainer(
        images,
        small_settings(tmp_path / "run", epochs=1, conditional=True),
        class_labels=conditional_labels(),
    )
    assert [progress.epoch for progress in training.train(trainer)] == [1]  # finite losses, or it raises
    params = ckpt.read_params(ckpt.latest_checkpoint(tmp_path / "run"))
    assert params["classes"] == ["mass", "calcification"] and params["class_counts"] == [21, 11]
    generator = ckpt.load_generator(ckpt.latest_checkpoint(tmp_path / "run"))
    np.testing.assert_array_equal(
        generator([latents(2), np.array([0, 1], "int32")], training=False).numpy(),
        trainer.generator([latents(2), np.array([0, 1], "int32")], training=False).numpy(),
    )
    # the labels are part of the data: other labels, another run
    other = ClassLabels(("mass", "calcification"), 1 - conditional_labels().labels)
    changed = trainers.build_trainer(
        images, small_settings(tmp_path / "run", epochs=2, conditional=True), class_labels=other
    )
    with pytest.raises(training.IncompatibleCheckpoint, match="data_fingerprint"):
        list(training.train(changed))


@pytest.mark.slow
def test_conditional_runs_resume_exactly(tmp_path):
    images, labels = training_images(), conditional_labels()
    settings = dict(conditional=True, architecture="stylegan", lecam_weight=0.1)
    whole = trainers.build_trainer(
        images, small_settings(tmp_path / "whole", **settings), class_labels=labels
    )
    list(training.train(whole))
    first = small_settings(tmp_path / "split", epochs=1, **settings)
    list(training.train(trainers.build_trainer(images, first, class_labels=labels)))
    resumed = trainers.build_trainer(
        images, small_settings(tmp_path / "split", **settings), class_labels=labels
    )
    assert [p.epoch for p in training.train(resumed)] == [2]
    whole_losses = pd.read_csv(tmp_path / "whole" / "losses.csv")
    np.testing.assert_array_equal(
        whole_losses.to_numpy(), pd.read_csv(tmp_path / "split" / "losses.csv").to_numpy()
    )
    for model in ("generator", "discriminator"):
        for a, b in zip(whole.models[model].weights, resumed.models[model].weights, strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b)), a.path


def test_an_unconditional_run_ignores_labels_it_is_given(tmp_path):
    images = training_images()
    plain = trainers.build_trainer(images, small_settings(tmp_path / "plain"))
    given = trainers.build_trainer(
        images, small_settings(tmp_path / "given"), class_labels=conditional_labels()
    )
    assert plain.params()["data_fingerprint"] == given.params()["data_fingerprint"]
    assert "classes" not in plain.params()
    np.testing.assert_array_equal(
        list(plain.train_step(np.arange(8)).values()), list(given.train_step(np.arange(8)).values())
    )


# --- 04: images per class, the exported generator and its CLI -------------------------------------------


def test_generated_images_are_written_per_class_and_read_back_with_their_classes(tmp_path):
    from mammogan_lib.gan import generate

    params = {"conditional": True, "classes": ["mass", "calcification"], "class_counts": [3, 1]}
    classes = generate.generation_classes(params, 40, seed=3)
    np.testing.assert_array_equal(classes, generate.generation_classes(params, 40, seed=3))
    assert generate.generation_classes({"conditional": False}, 40, seed=3) is None
    assert 0.5 < np.mean(classes == 0) < 0.95  # drawn with the training shares (3:1)
    images = np.linspace(-1, 1, 40 * 64 * 64, dtype="float32").reshape(40, 64, 64)
    run_dir = tmp_path / "run"
    folder = generate.write_generated(
        images, run_dir / "generated" / "epoch_000002", classes, params["classes"]
    )
    for index, name in enumerate(params["classes"]):
        assert len(list((folder / name).glob("*.png"))) == int((classes == index).sum())
    assert not list(folder.glob("*.png"))
    loaded, epoch = generate.load_generated(run_dir)
    assert epoch == 2 and np.array_equal(loaded, images)
    assert generate.load_generated_classes(run_dir, 2) == [params["classes"][i] for i in classes]
    generate.write_generated(images, folder)  # the same folder rewritten by an unconditional run
    assert generate.load_generated_classes(run_dir, 2) is None


@pytest.mark.slow
def test_a_conditional_generator_exports_with_its_classes_and_the_cli_generates_one_class(tmp_path):
    import json

    import cv2

    from mammogan_lib.gan import generate
    from tests.test_generate import run_cli

    run_dir = tmp_path / "exp5"
    settings = small_settings(run_dir, epochs=1, conditional=True)
    trainer = trainers.build_trainer(training_images(), settings, class_labels=conditional_labels())
    list(training.train(trainer))
    exported, card_path = generate.export_generator(run_dir, ckpt.latest_checkpoint(run_dir))
    card = json.loads(card_path.read_text())
    assert card["conditional"] is True and card["classes"] == ["mass", "calcification"]
    assert card["class_counts"] == [21, 11] and "--class mass|calcification" in card["generate"]

    latents_7 = generate.latent_vectors(4, LATENT, seed=7)
    calcifications = np.ones(4, np.int32)
    expected = generate.run_generator(trainer.generator, latents_7, 7, classes=calcifications)
    out = tmp_path / "calcification"
    ran = run_cli(exported, "--count", 4, "--out", out, "--seed", 7, "--class", "calcification")
    assert ran["rc"] == 0, ran["stderr"][-2000:]
    written = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(out.glob("*.png"))])
    assert np.array_equal(written, generate.to_uint8(expected))

    drawn = generate.generation_classes(card, 4, 7)  # without --class: the classes as 04 draws them
    ran = run_cli(exported, "--count", 4, "--out", tmp_path / "drawn", "--seed", 7)
    assert ran["rc"] == 0, ran["stderr"][-2000:]
    written = np.stack(
        [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((tmp_path / "drawn").glob("*.png"))]
    )
    assert np.array_equal(
        written, generate.to_uint8(generate.run_generator(trainer.generator, latents_7, 7, classes=drawn))
    )

    refused = run_cli(exported, "--count", 1, "--out", tmp_path / "none", "--class", "asymmetry")
    assert refused["rc"] == 2
    assert (
        "--class asymmetry: unknown class; this generator's classes are mass, calcification"
        in refused["stderr"]
    )


def test_class_choice_on_an_unconditional_generator_is_refused_clearly():
    from mammogan_lib.gan import generate

    with pytest.raises(ValueError, match="unconditional and was trained on mass and calcification"):
        generate.check_class("mass", {"classes": ["mass", "calcification"], "conditional": False})
    generate.check_class("mass", {"classes": ["mass"], "conditional": False})  # its one class
    generate.check_class(None, {"classes": ["mass", "calcification"], "conditional": False})


# --- 05: every metric per class; 06: one generated class ------------------------------------------------


def test_every_headline_metric_is_computed_per_class_on_that_class_alone():
    from mammogan_lib.evaluate import metrics
    from mammogan_lib.evaluate.features import FeatureNetwork

    rng = np.random.default_rng(0)
    sizes = {"train": 24, "heldout": 12, "generated": 20}
    images = {key: rng.uniform(-1, 1, (n, 64, 64)).astype("float32") for key, n in sizes.items()}
    labels = {key: [("mass", "calcification", "")[i % 3] for i in range(n)] for key, n in sizes.items()}
    network = FeatureNetwork("inception", False, "offline", None)
    features = {"inception": {key: rng.normal(size=(n, 8)) for key, n in sizes.items()}}
    settings = dict(
        kid_subsets=5, kid_subset_size=100, seed=0, prdc_k=2, bootstrap_repeats=0, memorisation_quantile=0.05
    )
    per_class = metrics.class_results(
        ["mass", "calcification"], labels, images, features, [network], settings
    )
    assert list(per_class) == ["mass", "calcification"]
    for offset, name in enumerate(per_class):
        rows = {key: np.arange(offset, n, 3) for key, n in sizes.items()}
        mass_features = {key: features["inception"][key][rows[key]] for key in rows}
        result = per_class[name]
        assert result["fid_random_inception"] == pytest.approx(
            metrics.frechet_distance(mass_features["generated"], mass_features["train"])
        )
        assert result["fid_random_inception_real_floor"] == pytest.approx(
            metrics.frechet_distance(mass_features["train"], mass_features["heldout"])
        )
        assert (result["n_generated"], result["n_train"], result["n_heldout"]) == tuple(
            len(rows[key]) for key in ("generated", "train", "heldout")
        )
        scores = metrics.nearest_real_scores(
            images["generated"][rows["generated"]], images["train"][rows["train"]]
        )
        assert result["ssim_median"] == pytest.approx(float(scores["ssim"].median()))
        assert result["n_equal"] == min(len(rows["generated"]), len(rows["train"]))
        for key in ("kid_random_inception_mean", "precision_random_inception", "memorised_fraction"):
            assert result[key] is not None, key
    table = metrics.class_table({"headline": {"n_generated": 20}, "per_class": per_class}, [network])
    assert table.index.tolist() == ["all", "mass", "calcification"]
    assert table.loc["mass", "n_generated"] == 7 and table.loc["all", "n_generated"] == 20


def test_a_class_too_small_for_a_metric_gets_none_and_a_note():
    from mammogan_lib.evaluate import metrics
    from mammogan_lib.evaluate.features import FeatureNetwork

    rng = np.random.default_rng(1)
    sizes = {"train": 6, "heldout": 1, "generated": 6}
    images = {key: rng.uniform(-1, 1, (n, 64, 64)).astype("float32") for key, n in sizes.items()}
    labels = {key: ["mass"] * n for key, n in sizes.items()}
    features = {"inception": {key: rng.normal(size=(n, 4)) for key, n in sizes.items()}}
    settings = dict(
        kid_subsets=2, kid_subset_size=10, seed=0, prdc_k=2, bootstrap_repeats=0, memorisation_quantile=0.05
    )
    network = FeatureNetwork("inception", False, "offline", None)
    result = metrics.class_results(["mass"], labels, images, features, [network], settings)["mass"]
    assert result["fid_random_inception"] is not None and result["fid_random_inception_heldout"] is None
    assert any("fewer than 2 images" in note for note in result["notes"])


def test_06_can_use_the_generated_images_of_one_class():
    images = np.arange(5, dtype="float32")
    classes = ["mass", "calcification", "mass", "mass", "calcification"]
    chosen, which = conditioning.generated_of_class(images, classes, "calcification")
    assert chosen.tolist() == [1, 4] and which == "class calcification only"
    assert conditioning.generated_of_class(images, classes, "")[0].tolist() == images.tolist()
    assert conditioning.generated_of_class(images, None, "")[0].tolist() == images.tolist()
    with pytest.raises(
        ValueError, match="'svm_generated_class' is 'mass', but this run's generator is unconditional"
    ):
        conditioning.generated_of_class(images, None, "mass")
    with pytest.raises(ValueError, match="'asymmetry' is not a class.*mass, calcification"):
        conditioning.generated_of_class(images, classes, "asymmetry")


@pytest.mark.slow
def test_the_conditional_step_compiles_with_xla(tmp_path):
    """The class draw is one XLA compiles (``stateless_categorical`` has no XLA kernel)."""
    settings = small_settings(tmp_path / "xla", epochs=1, conditional=True, jit_compile=True)
    trainer = trainers.build_trainer(training_images(), settings, class_labels=conditional_labels())
    assert [progress.epoch for progress in training.train(trainer)] == [1]
