"""mammogan_lib.bench: the FLOP counter against hand counts, the classic reference loop updates what it
should, and the benchmark's report has its structure (speed itself is never asserted, only positivity)."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mammogan_lib import bench
from mammogan_lib.core.frameworks import import_keras


def test_flop_counter_matches_a_hand_count_of_one_conv_and_one_dense_layer():
    keras = import_keras()
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="valid", name="conv")(image)  # (6, 6, 4)
    x = keras.layers.Flatten(name="flatten")(x)  # (144,)
    x = keras.layers.Dense(5, name="dense")(x)
    records = bench.count_forward_flops(keras.Model(image, x))
    conv = 2 * (6 * 6) * (3 * 3) * 3 * 4 + 6 * 6 * 4  # 2*H_out*W_out*k_h*k_w*C_in*C_out + bias = 7920
    dense = 2 * 144 * 5 + 5  # 2*in*out + bias = 1445
    assert [(r.layer, r.flops) for r in records] == [("conv", conv), ("dense", dense)]
    assert bench.forward_flops(keras.Model(image, x)) == 9365


def test_flop_counter_counts_what_an_upsample_conv_executes():
    from mammogan_lib.gan.models.layers import UpsampleConv2D

    keras = import_keras()
    image = keras.Input((4, 4, 3))
    model = keras.Model(image, UpsampleConv2D(5, name="up_conv")(image))  # (8, 8, 5)
    bias = 8 * 8 * 5
    executed = 2 * (4 * 4) * (4 * 4) * 3 * 5 + bias  # a 4x4 stride-2 transposed conv of the 4x4 input
    two_layers = 2 * (8 * 8) * (3 * 3) * 3 * 5 + bias  # UpSampling2D, then a 3x3 conv of the 8x8 map
    assert [(r.layer, r.flops) for r in bench.count_forward_flops(model)] == [("up_conv", executed)]
    assert (executed - bias) / (two_layers - bias) == 4 / 9


def test_flop_counter_handles_strides_upsampling_transposed_convs_and_nested_models():
    keras = import_keras()
    image = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(3, 4, strides=2, padding="same", use_bias=False, name="down")(image)  # (4,4,3)
    x = keras.layers.UpSampling2D(name="up")(x)  # (8, 8, 3): data movement only
    x = keras.layers.Conv2DTranspose(5, 2, strides=2, name="tconv")(x)  # (16, 16, 5)
    inner = keras.Model(image, x, name="inner")
    outer_input = keras.Input((8, 8, 2))
    records = bench.count_forward_flops(keras.Model(outer_input, inner(outer_input)))
    down = 2 * (4 * 4) * (4 * 4) * 2 * 3  # no bias
    tconv = 2 * (8 * 8) * (2 * 2) * 3 * 5 + 16 * 16 * 5  # every input pixel scatters a 2x2x5 kernel
    expected = [("inner", "down", down), ("inner", "tconv", tconv)]
    assert [(r.model, r.layer, r.flops) for r in records] == expected


def test_step_flops_count_three_forward_equivalents_per_network_update():
    per_image = {"generator": 10, "discriminator": 1}
    assert bench.step_flops(bench.OUR_STEP_PASSES, per_image, batch_size=2) == 2 * (3 * 10 + 7 * 1)
    assert bench.step_flops(bench.CLASSIC_LOOP_PASSES, per_image, batch_size=2) == 2 * (4 * 10 + 8 * 1)


def test_exp3_hours_for_both_readings_of_epoch():
    hours = bench.exp3_hours(ms_per_step=1800.0, batch_size=32)  # 500 // 32 = 15 steps per full pass
    assert hours == {
        "full_pass_steps": 300_000,
        "full_pass_epochs_h": 150.0,
        "one_batch_steps": 20_000,
        "one_batch_epochs_h": 10.0,
    }


def test_classic_loop_updates_d_in_its_updates_and_only_g_through_the_combined_model():
    settings = bench.bench_settings("baseline", 64, 4, "float32", 0.125, seed=0)
    loop = bench.build_classic_loop(bench.random_images(8, 64, 0), settings)

    def weights(model):  # all of them: which are "trainable" is what the loop toggles
        return [v.numpy().copy() for v in model.weights]

    def changed(before, after):
        return any(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))

    for _ in range(2):  # the second iteration runs the already-traced functions
        d_before, g_before = weights(loop.discriminator), weights(loop.generator)
        loop.discriminator.trainable = True
        loop.discriminator.train_on_batch(loop.images[:4], np.ones((4, 1), np.float32))
        assert changed(d_before, weights(loop.discriminator))
        assert not changed(g_before, weights(loop.generator))
        d_before, g_before = weights(loop.discriminator), weights(loop.generator)
        loop.discriminator.trainable = False
        z = np.zeros((4, settings.latent_dim), np.float32)
        loop.combined.train_on_batch(z, np.ones((4, 1), np.float32))
        assert changed(g_before, weights(loop.generator))
        assert not changed(d_before, weights(loop.discriminator))
    losses = loop.step()
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_step_timer_reports_its_configuration_and_a_positive_time():
    result = bench.time_train_step(
        resolution=64,
        batch_size=4,
        width=0.125,
        precision="mixed",
        warmup=1,
        repeats=2,
        separate_upsampling=True,
    )
    assert result["dtype_policy"] == "mixed_bfloat16" and result["resolution"] == 64
    assert result["separate_upsampling"]
    assert result["ms_per_step"] > 0 and len(result["step_ms"]) == 2
    assert abs(result["images_per_s"] - 4 / (result["ms_per_step"] / 1000)) < 0.1 * result["images_per_s"]
    assert result["flops_per_step"] > 0


def test_auto_is_judged_against_the_float32_step_measured_in_the_same_run():
    rows = {
        "float32": {"dtype_policy": "float32", "ms_per_step": 100.0},
        "mixed": {"dtype_policy": "mixed_bfloat16", "ms_per_step": 104.0},
    }
    assert bench.check_auto(rows, {"policy": "float32", "reason": "r"})["right"]
    close = bench.check_auto(rows, {"policy": "mixed_bfloat16", "reason": "r"})
    assert close["right"] and close["vs_float32"] == 1.04
    rows["mixed"]["ms_per_step"] = 106.0
    wrong = bench.check_auto(rows, {"policy": "mixed_bfloat16", "reason": "r"})
    assert not wrong["right"] and wrong["vs_float32"] == 1.06


def test_an_emulated_mixed_precision_is_timed_with_fewer_steps():
    options = bench.BenchOptions(warmup=3, repeats=10)
    native = bench.train_configs(options, mixed_native=True)["mixed"][1]
    emulated = bench.train_configs(options, mixed_native=False)["mixed"][1]
    assert (native["warmup"], native["repeats"]) == (3, 10)
    assert (emulated["warmup"], emulated["repeats"]) == (bench.EMULATED_WARMUP, bench.EMULATED_REPEATS)
    assert bench.mixed_is_native({"gpus": [], "native_bfloat16": False}) is False
    assert bench.mixed_is_native({"gpus": ["Tesla T4, 15360 MiB"], "native_bfloat16": False})


def test_op_categories_name_the_work_of_the_models():
    conv4 = "generator_baseline_1/g_conv4_1"
    assert (
        bench.op_category(
            "_MklNativeConv2DBackpropInput", f"gradient_tape/{conv4}/convolution/Conv2DBackpropInput"
        )
        == "conv input gradient"
    )
    assert (
        bench.op_category(
            "_MklNativeConv2DBackpropFilterWithBias",
            f"gradient_tape/{conv4}/convolution/Conv2DBackpropFilter",
        )
        == "conv weight gradient"
    )
    assert bench.op_category("_MklNativeFusedConv2D", "generator/g_conv3_1/BiasAdd") == "conv forward"
    # an UpsampleConv2D: a transposed convolution forward, a plain convolution as its input gradient
    assert bench.op_category("_MklNativeConv2DBackpropInput", f"{conv4}/conv_transpose") == "conv forward"
    assert bench.op_category("_MklNativeConv2D", f"gradient_tape/{conv4}/conv_transpose/Conv2D") == (
        "conv input gradient"
    )
    assert bench.op_category("Tile", "generator/g_bn3_1/moments/Tile_2").startswith("batch norm")
    assert bench.op_category("Sum", "gradient_tape/generator/g_up3_1/Repeat/Sum_1").startswith("upsampling")
    assert bench.op_category("Square", "adam/Square") == "optimizer (Adam)"


def test_profile_reports_time_by_category_and_the_top_ops(tmp_path):
    profile = bench.profile_step(
        "float32", resolution=64, batch_size=4, width=0.125, warmup=1, steps=1, top=5, logdir=str(tmp_path)
    )
    assert profile["wall_ms_per_step"] > 0 and profile["ms_per_step_by_category"]["conv forward"] > 0
    assert len(profile["top_ops"]) == 5 and all(op["ms_per_step"] >= 0 for op in profile["top_ops"])


@pytest.mark.slow
def test_benchmark_writes_its_report_on_a_tiny_configuration(tmp_path):
    output = tmp_path / "bench.json"
    argv = [
        "--resolution",
        "64",
        "--width",
        "0.125",
        "--batch-size",
        "4",
        "--warmup",
        "1",
        "--repeats",
        "2",
        "--matmul-size",
        "128",
        "--skip-preprocess",
        "--feature-batch-size",
        "1",
        "--feature-repeats",
        "1",
        "--output",
        str(output),
    ]
    assert bench.main(argv) == 0
    report = json.loads(output.read_text())
    assert report["complete"] is True
    assert report["machine"]["cpu_count"] >= 1 and len(report["load_average_end"]) == 3
    assert report["matmul_peak"]["float32_peak_gflops"] > 0
    assert list(report["train"]) == ["reference", "float32_thesis_layers", "float32", "mixed"]
    for name, row in report["train"].items():
        assert row["ms_per_step"] > 0 and row["images_per_s"] > 0 and row["peak_rss_mib"] > 0, name
        assert row["flops_per_step"] > 0 and row["gflop_per_s"] > 0 and row["speedup_vs_reference"] > 0
    assert report["train"]["reference"]["speedup_vs_reference"] == 1.0
    assert report["train"]["mixed"]["dtype_policy"] == "mixed_bfloat16"
    flops = report["flops"]
    assert flops["reference_step_flops"] > flops["our_step_flops_thesis_layers"] > flops["our_step_flops"] > 0
    assert report["train"]["float32_thesis_layers"]["flops_per_step"] == flops["our_step_flops_thesis_layers"]
    assert set(report["targets"]) == {"float32"}
    assert set(report["exp3_hours"]) == set(report["train"])
    machine = report["machine"]
    assert {"cpu_flags", "avx512", "native_bfloat16"} <= set(machine)
    if not machine["native_bfloat16"] and not machine["gpus"]:  # emulated bfloat16: fewer steps, float32 pick
        assert len(report["train"]["mixed"]["step_ms"]) == min(2, bench.EMULATED_REPEATS)  # --repeats 2
        assert report["auto"]["policy"] == "float32" and report["auto"]["right"]
    auto = report["auto"]
    assert auto["policy"] in ("float32", "mixed_bfloat16") and auto["vs_float32"] > 0
    assert auto["right"] == (auto["vs_float32"] <= bench.AUTO_TOLERANCE)
    assert report["t4_estimate"]["float32_slow"]["ms_per_step"] > 0
    assert "preprocess" not in report
    assert set(report["features"]) == {"resnet50", "inception"}
    assert all(row["images_per_s"] > 0 and row["peak_rss_mib"] > 0 for row in report["features"].values())


def test_a_benchmark_stopped_part_way_keeps_what_it_measured(tmp_path, monkeypatch):
    """Each measurement is written as it finishes, so an interrupted run leaves its rows on disk."""
    from mammogan_lib.bench import report as bench_report

    def measured(measure, config, required=True, backend="tensorflow"):
        if measure == "auto_precision":
            raise KeyboardInterrupt  # the run is stopped while auto calibrates
        if measure == "matmul":
            return {
                "size": 8,
                "repeats": 1,
                "gflops": {"numpy_float32": 100.0},
                "float32_peak_gflops": 100.0,
                "float32_peak_source": "numpy_float32",
            }
        if measure in ("matmul_reduced", "flops"):
            return {"gflops": 1.0}
        policy = "mixed_bfloat16" if config.get("precision") == "mixed" else "float32"
        milliseconds = 500.0 if measure == "reference" else 250.0
        return {"ms_per_step": milliseconds, "flops_per_step": 10**10, "dtype_policy": policy}

    monkeypatch.setattr(bench_report, "run_measurement", measured)
    output = tmp_path / "bench.json"
    with pytest.raises(KeyboardInterrupt):
        bench.main(["--skip-preprocess", "--skip-features", "--output", str(output)])
    report = json.loads(output.read_text())
    assert report["complete"] is False and "auto" not in report
    assert list(report["train"]) == list(bench.TRAIN_MEASUREMENTS)
    assert report["train"]["float32"]["speedup_vs_reference"] == 2.0
    assert report["matmul_peak"]["float32_peak_gflops"] == 100.0 and report["wall_s"] >= 0
    assert report["command"].startswith("python -m mammogan_lib.bench --skip-preprocess")


TINY_GAN = ["--resolution", "64", "--width", "0.125", "--batch-size", "4", "--warmup", "1", "--repeats", "2"]


def without_tensorflow(tmp_path) -> dict[str, str]:
    """An environment whose ``import tensorflow`` fails, as on the GPU machine (no TensorFlow there)."""
    stand_in = tmp_path / "no_tensorflow" / "tensorflow"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(
        "raise ImportError('tensorflow is not installed on this machine')\n"
    )
    return {**os.environ, "PYTHONPATH": str(stand_in.parent), "KERAS_BACKEND": "torch"}


@pytest.mark.slow
def test_the_benchmark_measures_the_gan_on_the_backend_it_is_given(tmp_path):
    output = tmp_path / "bench.json"
    argv = [*TINY_GAN, "--matmul-size", "128", "--skip-preprocess", "--skip-features", "--backend", "torch"]
    done = subprocess.run(
        [sys.executable, "-m", "mammogan_lib.bench", *argv, "--output", str(output)],
        capture_output=True,
        text=True,
        env=without_tensorflow(tmp_path),
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(output.read_text())
    assert report["options"]["backend"] == "torch"
    assert {"numpy_float32", "torch_float32"} == set(report["matmul_peak"]["gflops"])
    rows = report["train"]
    assert all(rows[name]["backend"] == "torch" for name in ("float32_thesis_layers", "float32"))
    assert all(rows[name]["ms_per_step"] > 0 for name in ("reference", "float32_thesis_layers", "float32"))
    # torch's CPU bfloat16 lacks a convolution gradient on some CPUs: then the row says so, and the rest stand
    mixed = rows["mixed"]
    if "error" in mixed:
        assert "parameter 'precision'" in mixed["error"]
        assert "cannot take a convolution's gradient" in mixed["error"]
        assert f"{mixed['label']:<42} FAILED: " in done.stdout and "mixed" not in report["exp3_hours"]
    else:
        assert mixed["backend"] == "torch" and mixed["ms_per_step"] > 0
    assert "training on Keras's torch backend" in done.stdout


@pytest.mark.slow
def test_the_gpu_check_runs_without_tensorflow_and_labels_the_t4_figures_an_estimate(tmp_path):
    output = tmp_path / "gpu"
    backends = ["torch"] + (["jax"] if importlib.util.find_spec("jax") else [])
    argv = [*TINY_GAN, "--matmul-size", "128", "--backends", *backends, "--output", str(output)]
    done = subprocess.run(
        [sys.executable, "-m", "mammogan_lib.bench.gpu", *argv],
        capture_output=True,
        text=True,
        env=without_tensorflow(tmp_path),
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((output / "gpu.json").read_text())
    assert sorted(report["backends"]) == sorted(backends)
    for backend, measured in report["backends"].items():
        assert measured["matmul"]["float32_peak_gflops"] > 0
        assert measured["matmul_reduced"]["dtype"] == ("float16" if report["machine"]["gpus"] else "bfloat16")
        assert list(measured["train_step"]) == ["float32", "mixed"]
        for policy, row in measured["train_step"].items():
            assert row["backend"] == backend
            if "error" in row:  # torch's bfloat16 on a CPU without oneDNN's kernels: refused, and said so
                assert policy == "mixed" and backend == "torch" and not report["machine"]["gpus"]
                assert "cannot take a convolution's gradient in bfloat16" in row["error"]
                assert "| torch | mixed | FAILED: " in (output / "gpu.md").read_text()
                continue
            assert row["ms_per_step"] > 0 and row["tflop_per_s"] > 0
            assert row["exp3_hours"]["full_pass_steps"] == 20_000 * (500 // 4)  # passes over 500 images
            assert row["t4_estimate"]["kind"].startswith("ESTIMATE")
    table = (output / "gpu.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + 2 * len(backends)  # the header and a row per backend and policy
    assert "T4 ESTIMATE" in table
