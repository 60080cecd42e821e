"""precision: auto: the policy each machine kind gets, decided from devices and flags that the tests
supply, so that no test depends on the CPU it runs on."""

import pytest

from mammogan_lib.core.config import ParameterError
from mammogan_lib.gan.precision import (
    CALIBRATION_MARGIN,
    GpuInfo,
    choose_precision,
    cpu_description,
    cpu_flags,
)

ZEN3_AVX2 = {"sse4_2", "avx", "avx2", "fma", "f16c"}
ZEN4_BF16 = ZEN3_AVX2 | {"avx512f", "avx512bw", "avx512_bf16", "avx512_vnni"}
SAPPHIRE_RAPIDS_AMX = ZEN4_BF16 | {"amx_tile", "amx_bf16", "amx_int8"}
GRAVITON3 = {"fp", "asimd", "sve", "bf16", "i8mm"}
T4 = GpuInfo("Tesla T4", (7, 5))
P100 = GpuInfo("Tesla P100-PCIE-16GB", (6, 0))


def never_called(policies):
    raise AssertionError(f"calibration should not run here (asked for {policies})")


def timed(bf16_ms, fp32_ms):
    calls = []

    def calibrate(policies):
        calls.append(tuple(policies))
        return {"float32": fp32_ms, "mixed_bfloat16": bf16_ms}

    return calibrate, calls


def test_an_avx2_cpu_trains_in_float32_without_timing_emulated_bfloat16():
    choice = choose_precision("auto", [], ZEN3_AVX2, calibrate=never_called)
    assert choice.policy == "float32" and "no native bfloat16" in choice.reason
    assert choice.requested == "auto" and choice.calibration_ms_per_step is None
    assert choice.device == "CPU (no native bfloat16 flag)"


@pytest.mark.parametrize(
    "flags", [ZEN4_BF16, SAPPHIRE_RAPIDS_AMX, GRAVITON3], ids=["avx512_bf16", "amx", "arm"]
)
def test_a_native_bfloat16_cpu_takes_bfloat16_only_when_the_calibration_shows_it_is_clearly_faster(flags):
    calibrate, calls = timed(bf16_ms=50.0, fp32_ms=100.0)
    faster = choose_precision("auto", [], flags, calibrate=calibrate)
    assert faster.policy == "mixed_bfloat16" and calls == [("float32", "mixed_bfloat16")]
    assert faster.calibration_ms_per_step == {"float32": 100.0, "mixed_bfloat16": 50.0}
    assert "50.0 ms/step" in faster.reason and "100.0 ms/step" in faster.reason
    # a native instruction does not make every small model faster: within the margin, float32 stays
    calibrate, _ = timed(bf16_ms=CALIBRATION_MARGIN * 100.0 + 1, fp32_ms=100.0)
    assert choose_precision("auto", [], flags, calibrate=calibrate).policy == "float32"
    calibrate, _ = timed(bf16_ms=105.0, fp32_ms=100.0)
    slower = choose_precision("auto", [], flags, calibrate=calibrate)
    assert slower.policy == "float32" and "not clearly faster" in slower.reason


def test_without_a_calibration_or_readable_flags_auto_is_float32():
    assert choose_precision("auto", [], ZEN4_BF16).policy == "float32"
    unreadable = choose_precision("auto", [], set(), calibrate=never_called)
    assert unreadable.policy == "float32" and "could not be read" in unreadable.reason


def test_a_tensor_core_gpu_gets_float16_and_an_older_gpu_float32():
    t4 = choose_precision("auto", [T4, T4], ZEN3_AVX2, calibrate=never_called)
    assert t4.policy == "mixed_float16" and "tensor cores" in t4.reason
    assert t4.device == "GPU Tesla T4 (compute capability 7.5)"
    p100 = choose_precision("auto", [P100], SAPPHIRE_RAPIDS_AMX, calibrate=never_called)
    assert p100.policy == "float32" and "no tensor cores" in p100.reason
    unknown = choose_precision("auto", [GpuInfo("some GPU", None)], ZEN3_AVX2, calibrate=never_called)
    assert unknown.policy == "float32"


def test_explicit_values_are_kept_and_emulation_is_said():
    assert choose_precision("float32", [T4], ZEN4_BF16, calibrate=never_called).policy == "float32"
    assert choose_precision("mixed", [T4], ZEN3_AVX2).policy == "mixed_float16"
    mixed_cpu = choose_precision("mixed", [], ZEN3_AVX2, calibrate=never_called)
    assert mixed_cpu.policy == "mixed_bfloat16" and "emulated" in mixed_cpu.reason
    assert "emulated" not in choose_precision("mixed", [], ZEN4_BF16).reason
    forced = choose_precision("mixed_bfloat16", [], ZEN3_AVX2, calibrate=never_called)
    assert forced.policy == "mixed_bfloat16" and "emulated" in forced.reason
    with pytest.raises(ValueError, match="float16"):
        choose_precision("float16", [], ZEN3_AVX2)


def test_a_framework_that_cannot_train_in_bfloat16_here_gets_float32_or_a_clear_error():
    def cannot(dtype):
        return f"torch 9.9 cannot take a convolution's gradient in {dtype} on this CPU (slow_conv2d)"

    auto = choose_precision("auto", [], ZEN4_BF16, calibrate=never_called, reduced_precision_problem=cannot)
    assert auto.policy == "float32" and "cannot take a convolution's gradient in bfloat16" in auto.reason
    for requested in ("mixed", "mixed_bfloat16"):
        with pytest.raises(ParameterError, match="parameter 'precision'.*bfloat16.*slow_conv2d") as raised:
            choose_precision(requested, [], ZEN3_AVX2, reduced_precision_problem=cannot)
        assert raised.value.key == "precision"
    assert choose_precision("float32", [], ZEN3_AVX2, reduced_precision_problem=cannot).policy == "float32"
    # on a GPU the CPU's problem does not matter, and a framework that can keeps the usual choice
    assert choose_precision("mixed", [T4], ZEN3_AVX2, reduced_precision_problem=cannot).policy == (
        "mixed_float16"
    )
    calibrate, _ = timed(bf16_ms=50.0, fp32_ms=100.0)
    able = choose_precision(
        "auto", [], ZEN4_BF16, calibrate=calibrate, reduced_precision_problem=lambda _: None
    )
    assert able.policy == "mixed_bfloat16"


def test_cpu_flags_are_read_from_x86_and_arm_cpuinfo(tmp_path):
    x86 = tmp_path / "x86"
    x86.write_text(
        "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma avx512f avx512_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu avx2 fma avx512f avx512_bf16\n"
    )
    assert cpu_flags(x86) == {"fpu", "avx2", "fma", "avx512f", "avx512_bf16"}
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16\nCPU implementer\t: 0x41\n")
    assert cpu_flags(arm) == {"fp", "asimd", "sve", "bf16"}
    assert cpu_flags(tmp_path / "missing") == frozenset()
    assert cpu_description(cpu_flags(x86)) == {
        "cpu_flags": ["avx2", "fma", "avx512f", "avx512_bf16"],
        "avx512": True,
        "native_bfloat16": True,
    }
    assert cpu_description(ZEN3_AVX2) == {
        "cpu_flags": ["avx2", "fma"],
        "avx512": False,
        "native_bfloat16": False,
    }
