"""mammogan_lib.gan.generate: checkpoint choice, seeded latents, interpolation, deterministic images on
disk."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mammogan_lib.core.frameworks import import_keras

keras = import_keras()

from mammogan_lib.gan import checkpoint as ckpt  # noqa: E402
from mammogan_lib.gan import generate  # noqa: E402
from mammogan_lib.gan.models import build_generator  # noqa: E402
from mammogan_lib.gan.trainers import build_trainer  # noqa: E402
from mammogan_lib.gan.training import train  # noqa: E402
from tests.test_models import set_noise_scales  # noqa: E402
from tests.test_training import small_settings  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny run with checkpoints after epochs 1, 2 and 3."""
    run_dir = tmp_path_factory.mktemp("run")
    images = np.random.default_rng(0).uniform(-1, 1, (16, 64, 64)).astype("float32")
    settings = small_settings(run_dir, epochs=3, keep_last=5)
    list(train(build_trainer(images, settings)))
    return run_dir


def test_empty_epochs_choose_the_newest_and_missing_epochs_are_named(trained_run, tmp_path):
    assert [p.name for p in generate.select_checkpoints(trained_run, [])] == ["epoch_000003"]
    assert [ckpt.checkpoint_epoch(p) for p in generate.select_checkpoints(trained_run, [3, 1])] == [1, 3]
    missing = r"'generate_epochs': no checkpoint for epochs \[7\].*\[1, 2, 3\]"
    with pytest.raises(FileNotFoundError, match=missing):
        generate.select_checkpoints(trained_run, [1, 7])
    with pytest.raises(FileNotFoundError, match="run 03_train_gan"):
        generate.select_checkpoints(tmp_path, [])


def test_latents_are_a_function_of_the_seed():
    first = generate.latent_vectors(5, 16, seed=1)
    assert first.shape == (5, 16) and first.dtype == np.float32
    assert np.array_equal(first, generate.latent_vectors(5, 16, seed=1))
    assert not np.array_equal(first, generate.latent_vectors(5, 16, seed=2))
    assert np.array_equal(first[:3], generate.latent_vectors(3, 16, seed=1))  # more images extend the set


def test_slerp_starts_and_ends_at_the_latents_and_keeps_the_norm():
    start, end = generate.latent_vectors(2, 64, seed=0)
    end = end / np.linalg.norm(end) * np.linalg.norm(start)  # equal norms: the path stays on the sphere
    path = generate.slerp_path(start, end, 7)
    assert path.shape == (7, 64)
    np.testing.assert_allclose(path[0], start, atol=1e-5)
    np.testing.assert_allclose(path[-1], end, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), np.linalg.norm(start), rtol=1e-5)
    linear_middle = np.linalg.norm((start + end) / 2)
    assert np.linalg.norm(path[3]) > linear_middle  # what a straight line would have lost
    np.testing.assert_allclose(generate.slerp_path(start, start, 3), np.stack([start] * 3), atol=1e-6)
    with pytest.raises(ValueError, match="at least 2 steps"):
        generate.slerp_path(start, end, 1)


def test_same_seed_same_images_also_with_noise_injection():
    keras.utils.set_random_seed(0)
    generator = build_generator("stylegan", 64, latent_dim=16, width=0.125)
    set_noise_scales(generator, 0.3)  # noise strength starts at zero (StyleGAN); make the noise matter
    latents = generate.latent_vectors(6, 16, seed=0)
    first = generate.run_generator(generator, latents, seed=3, batch_size=4)
    assert first.shape == (6, 64, 64) and first.min() >= -1 and first.max() <= 1
    assert np.array_equal(first, generate.run_generator(generator, latents, seed=3, batch_size=4))
    assert not np.array_equal(first, generate.run_generator(generator, latents, seed=4, batch_size=4))


def test_generated_images_are_written_as_pngs_and_one_array(trained_run):
    path = generate.select_checkpoints(trained_run, [2])[0]
    latents = generate.latent_vectors(5, 16, seed=0)
    images = generate.run_generator(ckpt.load_generator(path), latents, seed=0)
    folder = generate.write_generated(images, generate.generated_folder(trained_run, path))
    assert folder == trained_run / "generated" / "epoch_000002"
    pngs = sorted(folder.glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:04d}.png" for i in range(5)]
    assert np.array_equal(cv2.imread(str(pngs[1]), cv2.IMREAD_GRAYSCALE), generate.to_uint8(images[1]))
    loaded, epoch = generate.load_generated(trained_run)
    assert epoch == 2 and np.array_equal(loaded, images)
    generate.write_generated(images[:2], folder)  # fewer images replace, never mix with, the old ones
    assert len(list(folder.glob("*.png"))) == 2
    with pytest.raises(FileNotFoundError, match=r"epoch 9 .*found \[2\]"):
        generate.load_generated(trained_run, 9)


def test_to_uint8_maps_the_range_ends():
    assert generate.to_uint8(np.array([-1.5, -1.0, 0.0, 1.0, 2.0])).tolist() == [0, 0, 128, 255, 255]


EXPORT_CLI = """
import json, runpy, sys
sys.argv = ["python -m mammogan_lib.gan.generate", *sys.argv[1:]]
try:
    runpy.run_module("mammogan_lib.gan.generate", run_name="__main__")
except SystemExit as stop:
    print(json.dumps({"rc": stop.code, "training_imported": "mammogan_lib.gan.training" in sys.modules}))
"""


def run_cli(*arguments) -> dict:
    import json
    import subprocess
    import sys

    from tests.conftest import PROJECT_ROOT

    done = subprocess.run(
        [sys.executable, "-c", EXPORT_CLI, *map(str, arguments)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "stderr": done.stderr}


@pytest.mark.slow
def test_the_exported_generator_reloads_alone_and_gives_the_trainers_images(tmp_path):
    import json

    from mammogan_lib.core import files
    from mammogan_lib.core.run_paths import RunPaths
    from mammogan_lib.gan import model_card

    run_dir, paths = tmp_path / "exp2", RunPaths(tmp_path / "exp2")
    images = np.random.default_rng(0).uniform(-1, 1, (16, 64, 64)).astype("float32")
    trainer = build_trainer(images, small_settings(run_dir, architecture="stylegan", epochs=1, r1_gamma=1.0))
    list(train(trainer))  # its generator now holds the checkpoint's weights, noise scales trained
    files.write_json(paths.filter_summary, {"dataset_root": "data/phantom/abc", "layout": "kaggle_jpeg"})
    files.write_json(paths.stage_record("01_filter"), {"params": {"abnormalities": ["mass"]}})
    exported, card_path = generate.export_generator(run_dir, ckpt.latest_checkpoint(run_dir))
    assert exported == run_dir / "export" / "generator.keras" and card_path.parent == exported.parent

    latents = generate.latent_vectors(5, 16, seed=7)
    expected = generate.run_generator(trainer.generator, latents, seed=7, batch_size=2)
    reloaded = generate.load_exported_generator(exported)
    assert np.array_equal(generate.run_generator(reloaded, latents, seed=7, batch_size=2), expected)

    card = json.loads(card_path.read_text())
    assert card["architecture"] == "stylegan" and card["resolution"] == 64 and card["classes"] == ["mass"]
    assert card["training_data"]["licence"] == model_card.PHANTOM_LICENCE
    assert card["training_data"]["n_images"] == 16 and card["epochs"] == 1
    assert card["regularisers"] == "R1 gamma 1" and "not for" in card["intended_use"]
    assert card["metrics"] == model_card.METRICS_PENDING
    files.write_json(
        paths.metrics,
        {"epoch": 1, "inception": {"pretrained": True, "source": "hub"}, "headline": {"fid": 12.5}},
    )
    generate.attach_card_metrics(run_dir)
    metrics = json.loads(card_path.read_text())["metrics"]
    assert metrics["fid"] == 12.5 and metrics["epoch"] == 1
    assert metrics["feature_networks"] == [
        f"{model_card.FEATURE_NETWORK_TITLES['inception']}, pretrained, weights from hub"
    ]
    offline = {
        "inception": {"pretrained": True, "source": "hub"},
        "dinov2": {"pretrained": False, "source": "offline"},
    }
    warning = "fd_random_dinov2: random weights"
    files.write_json(
        paths.metrics, {"epoch": 1, "features": offline, "headline": {"fid": 12.5}, "warnings": [warning]}
    )
    generate.attach_card_metrics(run_dir)
    metrics = json.loads(card_path.read_text())["metrics"]
    assert "DINOv2" in metrics["feature_networks"][1] and "RANDOM" in metrics["feature_networks"][1]
    assert metrics["warnings"] == [warning]
    offline = {
        "effnet_lite0": {"pretrained": True, "source": "efficientnet-lite0-57934424.pth"},
        "radiomics": {"pretrained": True, "source": "radiomic features, FRD v1; no network weights"},
    }
    gone = [{"name": "inception", "reason": "no weights here"}]
    files.write_json(
        paths.metrics, {"epoch": 1, "features": offline, "headline": {}, "left_out_networks": gone}
    )
    generate.attach_card_metrics(run_dir)
    metrics = json.loads(card_path.read_text())["metrics"]
    assert (
        "not InceptionV3" in metrics["feature_networks"][0] and "pretrained" in metrics["feature_networks"][0]
    )
    assert metrics["feature_networks"][1].endswith(": radiomic features, FRD v1; no network weights")
    assert metrics["left_out_networks"] == gone

    out = tmp_path / "pngs"
    ran = run_cli(exported, "--count", 5, "--out", out, "--seed", 7, "--class", "mass")
    assert ran["rc"] == 0 and not ran["training_imported"], ran["stderr"][-2000:]
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == [f"{i:04d}.png" for i in range(5)]
    written = np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in pngs])
    assert np.array_equal(written, generate.to_uint8(generate.run_generator(trainer.generator, latents, 7)))
    refused = run_cli(exported, "--count", 1, "--out", tmp_path / "none", "--class", "calcification")
    assert refused["rc"] == 2 and "unconditional and was trained on mass" in refused["stderr"]


def test_the_model_cards_licence_follows_the_dataset_layout(tmp_path):
    from mammogan_lib.core import files
    from mammogan_lib.core.run_paths import RunPaths
    from mammogan_lib.gan import model_card

    summary = RunPaths(tmp_path).filter_summary
    files.write_json(
        summary, {"dataset_root": "/data/cbis", "layout": "tcia_dicom", "label_basis": ["pathology"]}
    )
    data = model_card.training_data(tmp_path, 500)
    assert data["licence"] == model_card.CBIS_DDSM_LICENCE and data["label_basis"] == ["pathology"]
    files.write_json(summary, {"dataset_root": "/data/vindr", "layout": "vindr_mammo"})
    assert model_card.training_data(tmp_path, 500)["licence"].startswith("not recorded")
