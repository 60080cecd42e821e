"""The GAN models: shapes per architecture and resolution, the thesis's parameter counts, StyleGAN parts,
saving, mixed precision."""

from __future__ import annotations

import numpy as np
import pytest

from mammogan_lib.core import config
from mammogan_lib.core.frameworks import import_keras

keras = import_keras()
ops = keras.ops

from mammogan_lib.gan.models import ARCHITECTURES, build_discriminator, build_generator, build_models  # noqa: E402
from mammogan_lib.gan.models.layers import (  # noqa: E402
    AdaIN,
    LearnedConstant,
    NoiseInjection,
    SpectralNorm,
    UpsampleConv2D,
    quadrant_of,
    upsample_conv_by_phases,
)

ARCHS = sorted(name for name, entry in ARCHITECTURES.items() if entry.build_own_discriminator is None)
"""The thesis's architectures, which share its discriminator (fastgan's own is tested below)."""
RESOLUTIONS = (64, 128, 256)
LATENT = 128


def test_the_architecture_parameter_offers_exactly_the_registered_generators():
    assert tuple(ARCHITECTURES) == config.ARCHITECTURE_NAMES
    assert set(config.PROGRESSIVE_ARCHITECTURES) <= set(ARCHITECTURES)


def latent_batch(n: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, LATENT)).astype("float32")


def names_starting(model: keras.Model, prefix: str) -> list[str]:
    return [layer.name for layer in model.layers if layer.name.startswith(prefix)]


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("resolution", RESOLUTIONS)
@pytest.mark.parametrize("architecture", ARCHS)
def test_small_models_give_images_and_probabilities(architecture, resolution):
    generator, discriminator = build_models(architecture, resolution, LATENT, width=0.25)
    images = generator(latent_batch(), training=False).numpy()
    assert images.shape == (2, resolution, resolution, 1)
    assert images.min() >= -1.0 and images.max() <= 1.0
    probabilities = discriminator(images, training=False).numpy()
    assert probabilities.shape == (2, 1)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()


# Baseline (exp3) at 128, width 1.0. Conv 3x3 with bias: 3*3*C_in*C_out + C_out; BatchNormalization:
# 4 per channel (gamma, beta trainable; moving mean, variance not).
BASELINE_G_128 = {
    "g_dense": 128 * (8 * 8 * 256) + 8 * 8 * 256,  # 2,113,536
    "g_conv1": 3 * 3 * 256 * 128 + 128,  # 295,040
    "g_bn1": 4 * 128,
    "g_conv2": 3 * 3 * 128 * 128 + 128,  # 147,584
    "g_bn2": 4 * 128,
    "g_conv3": 3 * 3 * 128 * 128 + 128,  # 147,584
    "g_bn3": 4 * 128,
    "g_conv4": 3 * 3 * 128 * 64 + 64,  # 73,792
    "g_bn4": 4 * 64,
    "g_out_conv": 3 * 3 * 64 * 1 + 1,  # 577
}
# Discriminator at 128, width 1.0: Conv 4x4 stride 2 with bias: 4*4*C_in*C_out + C_out.
BASELINE_D_128 = {
    "d_conv1": 4 * 4 * 1 * 32 + 32,  # 544
    "d_conv2": 4 * 4 * 32 * 64 + 64,  # 32,832
    "d_conv3": 4 * 4 * 64 * 128 + 128,  # 131,200
    "d_conv4": 4 * 4 * 128 * 256 + 256,  # 524,544
    "d_dense": 8 * 8 * 256 + 1,  # 16,385
}


def test_baseline_parameter_counts_equal_the_thesis_layer_by_layer():
    generator, discriminator = build_models("baseline", 128, LATENT, width=1.0)
    for model, expected in ((generator, BASELINE_G_128), (discriminator, BASELINE_D_128)):
        counted = {layer.name: layer.count_params() for layer in model.layers if layer.count_params()}
        assert counted == expected
    assert generator.count_params() == 2_779_905
    assert sum(generator.get_layer(f"g_bn{i}").count_params() for i in range(1, 5)) == 1_792
    non_trainable = sum(int(np.prod(v.shape)) for v in generator.non_trainable_weights)
    assert non_trainable == 2 * (128 + 128 + 128 + 64)  # BN moving mean and variance
    assert discriminator.count_params() == 705_505


@pytest.mark.parametrize("architecture", ARCHS)
@pytest.mark.parametrize(("resolution", "blocks"), [(64, 3), (256, 5)])
def test_block_count_follows_the_resolution_at_full_width(architecture, resolution, blocks):
    generator, discriminator = build_models(architecture, resolution, LATENT, width=1.0)
    assert sum(isinstance(layer, UpsampleConv2D) for layer in generator.layers) == blocks
    separate = build_generator(architecture, resolution, LATENT, width=1.0, separate_upsampling=True)
    assert len(names_starting(separate, "g_up")) == blocks
    assert generator.output_shape == (None, resolution, resolution, 1)
    assert len(names_starting(discriminator, "d_conv")) == blocks
    assert discriminator.get_layer("d_flatten").input.shape[1:3] == (8, 8)
    assert discriminator.output_shape == (None, 1)


def test_baseline_filter_schedule():
    generator_64 = build_generator("baseline", 64)
    assert [generator_64.get_layer(f"g_conv{i}").filters for i in (1, 2, 3)] == [128, 128, 64]
    generator_256 = build_generator("baseline", 256)
    assert [generator_256.get_layer(f"g_conv{i}").filters for i in range(1, 6)] == [128] * 4 + [64]
    discriminator_64 = build_discriminator("baseline", 64)
    assert [discriminator_64.get_layer(f"d_conv{i}").filters for i in (1, 2, 3)] == [32, 64, 128]
    discriminator_256 = build_discriminator("baseline", 256)
    assert [discriminator_256.get_layer(f"d_conv{i}").filters for i in range(1, 6)] == [16, 32, 64, 128, 256]


def test_width_scales_filters_with_at_least_one():
    generator = build_generator("baseline", 128, width=0.25)
    assert generator.get_layer("g_reshape").output.shape[1:] == (8, 8, 64)
    assert generator.get_layer("g_conv4").filters == 16
    tiny = build_discriminator("baseline", 64, width=0.01)
    assert tiny.get_layer("d_conv1").filters == 1


def test_deep_generator_starts_at_8x8x512_with_two_convs_per_stage():
    generator = build_generator("deep", 128)
    assert generator.get_layer("g_reshape").output.shape[1:] == (8, 8, 512)
    convs = names_starting(generator, "g_conv")
    assert convs == [f"g_conv{stage}_{repeat}" for stage in range(1, 5) for repeat in (1, 2)]
    assert [generator.get_layer(f"g_conv{s}_1").filters for s in range(1, 5)] == [256, 128, 64, 32]
    assert generator.get_layer("g_dense").count_params() == 128 * 8 * 8 * 512 + 8 * 8 * 512


def test_discriminator_dropout_follows_the_experiment():
    rates = {arch: build_discriminator(arch, 64, width=0.25).get_layer("d_drop1").rate for arch in ARCHS}
    assert rates == {"baseline": 0.2, "deep": 0.3, "stylegan": 0.3}
    overridden = build_discriminator("deep", 64, width=0.25, dropout=0.1)
    assert [overridden.get_layer(f"d_drop{i}").rate for i in (1, 2, 3)] == [0.1] * 3


def test_stylegan_has_mapping_constant_noise_and_adain():
    generator = build_generator("stylegan", 128, width=0.25)
    mapping = generator.get_layer("g_mapping")
    assert len([layer for layer in mapping.layers if isinstance(layer, keras.layers.Dense)]) == 4
    assert mapping.output_shape == (None, LATENT)
    assert isinstance(generator.get_layer("g_const"), LearnedConstant)
    assert generator.get_layer("g_const").output.shape[1:] == (8, 8, 64)
    kinds = [type(layer) for layer in generator.layers]
    assert kinds.count(NoiseInjection) == 5 and kinds.count(AdaIN) == 5  # the 8x8 constant + 4 blocks
    adain = generator.get_layer("g_adain4")
    assert adain.count_params() == LATENT * 2 * 16 + 2 * 16  # style: w -> (scale, bias) per channel


def set_noise_scales(generator: keras.Model, value: float) -> None:
    for layer in generator.layers:
        if isinstance(layer, NoiseInjection):
            layer.scale.assign(np.full(layer.scale.shape, value, "float32"))


def test_stylegan_noise_is_used_and_reproducible_under_set_random_seed():
    def fresh_output() -> np.ndarray:
        keras.utils.set_random_seed(7)
        generator = build_generator("stylegan", 64, width=0.25)
        set_noise_scales(generator, 0.3)
        return generator(latent_batch(), training=False).numpy()

    first = fresh_output()
    np.testing.assert_array_equal(first, fresh_output())
    keras.utils.set_random_seed(7)
    generator = build_generator("stylegan", 64, width=0.25)
    set_noise_scales(generator, 0.3)
    generator(latent_batch())
    assert not np.array_equal(first, generator(latent_batch()).numpy())  # the next draw differs


# keras 3.15's own saving code calls np.array(variable) without the numpy-2 `copy` keyword (upstream).
@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_stylegan_generator_save_and_reload_round_trip(tmp_path):
    keras.utils.set_random_seed(3)
    generator = build_generator("stylegan", 64, width=0.25)
    set_noise_scales(generator, 0.3)  # non-zero, so the noise matters for the comparison
    path = tmp_path / "g.keras"
    generator.save(path)
    reloaded = keras.models.load_model(path)
    for original, loaded in zip(generator.weights, reloaded.weights, strict=True):
        np.testing.assert_array_equal(original.numpy(), loaded.numpy())
    z = latent_batch()
    np.testing.assert_array_equal(generator(z).numpy(), reloaded(z).numpy())  # same noise state too


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("architecture", ARCHS)
def test_mixed_precision_outputs_are_float32(architecture, policy, restore_policy):
    keras.mixed_precision.set_global_policy(policy)
    generator, discriminator = build_models(architecture, 64, LATENT, width=0.25)
    assert generator.get_layer("g_out_conv").compute_dtype == policy.removeprefix("mixed_")
    images = generator(latent_batch(), training=True)
    probabilities = discriminator(images, training=True)
    assert images.dtype == "float32" and probabilities.dtype == "float32"
    assert np.isfinite(images.numpy()).all() and np.isfinite(probabilities.numpy()).all()


def test_upsample_conv_equals_upsampling_then_a_3x3_same_convolution_at_every_size():
    rng = np.random.default_rng(0)
    for height, width in ((1, 1), (2, 3), (5, 7), (8, 8)):  # odd sizes and 1 pixel: the zero padding
        x = rng.standard_normal((2, height, width, 3)).astype("float32")
        kernel = rng.standard_normal((3, 3, 3, 4)).astype("float32")
        bias = rng.standard_normal(4).astype("float32")
        upsampled = np.repeat(np.repeat(x, 2, axis=1), 2, axis=2)
        padded = np.pad(upsampled, ((0, 0), (1, 1), (1, 1), (0, 0)))
        expected = (
            bias
            + sum(  # the 'same' 3x3 correlation, written out
                np.einsum(
                    "nhwc,cf->nhwf", padded[:, dy : dy + 2 * height, dx : dx + 2 * width], kernel[dy, dx]
                )
                for dy in range(3)
                for dx in range(3)
            )
        )
        layer = UpsampleConv2D(4)
        layer.build(x.shape)
        layer.set_weights([kernel, bias])
        np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-5)
        assert layer.compute_output_shape(x.shape) == (2, 2 * height, 2 * width, 4)
        # the four-phase form the jax backend computes on a CPU: the same function
        phases = upsample_conv_by_phases(x, kernel).numpy() + bias
        np.testing.assert_allclose(phases, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
@pytest.mark.parametrize("architecture", ARCHS)
def test_the_one_layer_and_two_layer_generators_share_weights_and_outputs(architecture):
    def build(separate: bool) -> keras.Model:
        keras.utils.set_random_seed(5)
        return build_generator(architecture, 64, LATENT, width=0.25, separate_upsampling=separate)

    fused, separate = build(False), build(True)
    assert [v.path for v in fused.weights] == [v.path for v in separate.weights]
    for a, b in zip(fused.weights, separate.weights, strict=True):  # same initial weights from one seed
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    keras.utils.set_random_seed(6)
    other = build_generator(architecture, 64, LATENT, width=0.25, separate_upsampling=True)
    for layer in other.layers:  # trained-looking BatchNorm statistics and noise, so that all of it counts
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.linspace(-0.5, 0.5, layer.moving_mean.shape[0]).astype("float32"))
    fused.set_weights(other.get_weights())
    z = latent_batch(4)
    for training in (True, False):
        np.testing.assert_allclose(
            fused(z, training=training).numpy(), other(z, training=training).numpy(), atol=2e-5
        )
    assert fused.count_params() == other.count_params()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"architecture": "dcgan", "resolution": 128}, "unknown architecture 'dcgan'"),
        ({"architecture": "baseline", "resolution": 96}, "resolution 96 is not supported"),
        ({"architecture": "baseline", "resolution": 64, "width": 0.0}, "width must be positive"),
        ({"architecture": "baseline", "resolution": 64, "d_dropout": 1.0}, "dropout rate"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_models(**kwargs)


# --- exp7, FastGAN-style -----------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_fastgan_gives_images_patch_logits_and_reconstructions_of_real_images(resolution):
    from mammogan_lib.gan.models.fastgan import logits_model, reconstruction_size

    generator, discriminator = build_models("fastgan", resolution, LATENT, width=0.25, d_dropout=0.0)
    images = generator(latent_batch(4), training=False)
    assert tuple(images.shape) == (4, resolution, resolution, 1)
    assert float(ops.min(images)) >= -1.0 and float(ops.max(images)) <= 1.0
    quadrants = ops.convert_to_tensor(np.arange(4, dtype="int32"))
    logits, whole, part = discriminator([images, quadrants], training=True)
    side = reconstruction_size(resolution)
    assert tuple(logits.shape) == (4, 5, 5, 1) and side == min(resolution, 128)
    assert tuple(whole.shape) == tuple(part.shape) == (4, side, side, 1)
    assert all(t.dtype == "float32" for t in (logits, whole, part))
    judged = logits_model(discriminator)  # the same layers without the decoders
    assert {id(v) for v in judged.weights} < {id(v) for v in discriminator.weights}
    np.testing.assert_allclose(
        judged(images).numpy(), discriminator([images, quadrants])[0].numpy(), atol=1e-6
    )


@pytest.mark.parametrize(
    ("resolution", "generator_excitations", "discriminator_excitations"),
    [(64, ["g_sle4_64"], ["d_sle64_8"]), (128, ["g_sle4_64", "g_sle8_128"], ["d_sle128_16", "d_sle64_8"])],
)
def test_fastgan_excites_each_map_from_one_16_times_smaller_in_g_and_8_times_larger_in_d(
    resolution, generator_excitations, discriminator_excitations
):
    generator, discriminator = build_models("fastgan", resolution, LATENT, width=0.25, d_dropout=0.0)
    assert [
        n.removesuffix("_excite") for n in names_starting(generator, "g_sle") if n.endswith("_excite")
    ] == (generator_excitations)
    found = [
        n.removesuffix("_excite") for n in names_starting(discriminator, "d_sle") if n.endswith("_excite")
    ]
    assert found == discriminator_excitations
    gate = generator.get_layer(f"{generator_excitations[-1]}_gate").output
    assert tuple(gate.shape[1:3]) == (1, 1)  # one factor per channel


def test_fastgan_at_the_papers_width_has_its_channels():
    generator, discriminator = build_models("fastgan", 256, 256, width=1.0, d_dropout=0.0)
    # ngf 64: 4x4 map 1,024 channels, 8: 512, 16: 256, 32: 128, 64: 128, 128: 64, 256: 32
    assert generator.get_layer("g_glu_init").output.shape[-1] == 1024
    widths = {
        size: generator.get_layer(f"g_block{size}_glu0").output.shape[-1]
        for size in (8, 16, 32, 64, 128, 256)
    }
    assert widths == {8: 512, 16: 256, 32: 128, 64: 128, 128: 64, 256: 32}
    # ndf 64: the 8x8 map D judges has 512 channels, the 16x16 map the part decoder reads 256
    assert discriminator.get_layer("d_down8_mean").output.shape[1:] == (8, 8, 512)
    assert discriminator.get_layer("d_down16_mean").output.shape[1:] == (16, 16, 256)
    assert sum(isinstance(layer, NoiseInjection) for layer in generator.layers) == 6  # 8, 32, 128: twice


def test_fastgan_discriminator_is_spectrally_normalised_on_request_and_refuses_dropout():
    _, plain = build_models("fastgan", 64, LATENT, width=0.25, d_dropout=0.0)
    _, normalised = build_models("fastgan", 64, LATENT, width=0.25, d_dropout=0.0, d_spectral_norm=True)
    convolutions = [layer for layer in plain.layers if isinstance(layer, keras.layers.Conv2D)]
    wrapped = [layer for layer in normalised.layers if isinstance(layer, SpectralNorm)]
    assert len(wrapped) == len(convolutions) > 10
    with pytest.raises(ValueError, match="no dropout and no class-conditional form"):
        build_models("fastgan", 64, LATENT, width=0.25, d_dropout=0.2)


@pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")
def test_fastgan_generator_save_and_reload_round_trip(tmp_path):
    keras.utils.set_random_seed(4)
    generator = build_generator("fastgan", 64, LATENT, width=0.25)
    set_noise_scales(generator, 0.3)
    generator.save(tmp_path / "g.keras")
    reloaded = keras.models.load_model(tmp_path / "g.keras")
    z = latent_batch()
    np.testing.assert_array_equal(generator(z).numpy(), reloaded(z).numpy())


def test_quadrant_takes_each_images_own_quarter():
    maps = np.arange(2 * 4 * 4 * 1, dtype="float32").reshape(2, 4, 4, 1)
    picked = quadrant_of(ops.convert_to_tensor(maps), ops.convert_to_tensor(np.array([3, 1], "int32")))
    np.testing.assert_array_equal(ops.convert_to_numpy(picked), np.stack([maps[0, 2:, 2:], maps[1, :2, 2:]]))


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_fastgan_mixed_precision_outputs_are_float32(policy, restore_policy):
    keras.mixed_precision.set_global_policy(policy)
    generator, discriminator = build_models("fastgan", 64, LATENT, width=0.25, d_dropout=0.0)
    images = generator(latent_batch(), training=True)
    outputs = discriminator([images, ops.convert_to_tensor(np.zeros(2, "int32"))], training=True)
    assert images.dtype == "float32" and all(output.dtype == "float32" for output in outputs)
