"""The floating-point policy the GAN trains in: ``precision: auto`` picks what the hardware computes natively.

Mixed precision only pays where the hardware has the arithmetic for it. Emulated, it is a cliff: on a CPU
without native bfloat16 (AVX2 and FMA, no AVX-512 BF16), the ``mixed_bfloat16`` step was measured 5.7-8.4x
*slower* than float32. So ``auto`` decides by the device:

* a CUDA GPU with tensor cores (compute capability 7.0 or higher; Kaggle's T4 is 7.5): ``mixed_float16``,
  with loss scaling; an older GPU: ``float32``;
* a CPU whose flags say it computes bfloat16 natively (x86 ``avx512_bf16`` or ``amx_bf16``, Arm ``bf16``):
  a short calibration times both policies on the model itself, and ``mixed_bfloat16`` is chosen only if it
  is clearly faster (:data:`CALIBRATION_MARGIN`); a native instruction does not make every small model
  faster, and a wrong pick would cost more than the seconds the calibration takes;
* any other CPU, or one whose flags cannot be read: ``float32``, without calibrating (emulated bfloat16 is
  never the faster one, and timing it would cost many slow steps).

The explicit values stay: ``float32``, ``mixed_bfloat16``, ``mixed_float16``, and ``mixed`` (float16 on a
GPU, bfloat16 on a CPU, whatever the CPU). :func:`choose_precision` is a pure function of the devices, the
flags and the calibration, so it is tested for every machine kind on any machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mammogan_lib.core.config import ParameterError
from mammogan_lib.core.frameworks import import_keras

PRECISIONS: tuple[str, ...] = ("auto", "float32", "mixed", "mixed_bfloat16", "mixed_float16")
"""``precision`` values: ``auto`` (the default) chooses; the others are fixed policies or ``mixed``."""

NATIVE_BFLOAT16_FLAGS: tuple[str, ...] = ("avx512_bf16", "amx_bf16", "bf16")
"""CPU flags (``/proc/cpuinfo``) of native bfloat16 arithmetic: x86 AVX-512 BF16 and AMX, Arm's BF16."""

REPORTED_CPU_FLAGS: tuple[str, ...] = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_bf16",
    "avx512_fp16",
    "amx_bf16",
    "amx_tile",
    "bf16",
    "asimd",
    "sve",
)
"""The flags a speed figure depends on, recorded with every run and benchmark."""

TENSOR_CORE_CAPABILITY = (7, 0)
"""CUDA compute capability from which GPUs have tensor cores (Volta); float16 below it is not faster."""

EMULATED = "; this CPU has no native bfloat16, so it is emulated and far slower"

CALIBRATION_MARGIN = 0.9
"""``auto`` takes bfloat16 on a CPU only if its calibrated step time is below 0.9 x float32's."""


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: tuple[int, int] | None


@dataclass(frozen=True)
class PrecisionChoice:
    """The policy a run trains in, and why (shown in 03, saved in ``train_summary.json``)."""

    requested: str
    policy: str
    reason: str
    device: str
    calibration_ms_per_step: dict[str, float] | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags (x86 ``flags``, Arm ``Features``); empty where they cannot be read."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def native_bfloat16_flags(flags: Iterable[str]) -> list[str]:
    """The flags among ``flags`` that mean native bfloat16 arithmetic."""
    flags = set(flags)
    return [flag for flag in NATIVE_BFLOAT16_FLAGS if flag in flags]


def cpu_description(flags: Iterable[str]) -> dict[str, Any]:
    """What the provenance record and the benchmark keep of a CPU's flags."""
    flags = set(flags)
    return {
        "cpu_flags": [flag for flag in REPORTED_CPU_FLAGS if flag in flags],
        "avx512": any(flag.startswith("avx512") for flag in flags),
        "native_bfloat16": bool(native_bfloat16_flags(flags)),
    }


def gpu_devices() -> list[GpuInfo]:
    """The GPUs the Keras backend in use sees, with their compute capability (``None`` where it does not
    say)."""
    backend = import_keras().backend.backend()
    if backend == "jax":
        return _jax_gpus()
    if backend == "torch":
        return _torch_gpus()
    import tensorflow as tf

    found = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        name = details.get("device_name", device.name)
        found.append(GpuInfo(name, tuple(capability) if capability else None))
    return found


def _jax_gpus() -> list[GpuInfo]:
    import jax

    try:
        devices = jax.devices("gpu")
    except RuntimeError:  # no GPU platform in this jaxlib
        return []
    found = []
    for device in devices:
        capability = getattr(device, "compute_capability", None)  # "9.0" on CUDA
        parsed = tuple(int(part) for part in str(capability).split(".")[:2]) if capability else None
        found.append(GpuInfo(device.device_kind, parsed))
    return found


def _torch_gpus() -> list[GpuInfo]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [
        GpuInfo(torch.cuda.get_device_name(index), tuple(torch.cuda.get_device_capability(index)))
        for index in range(torch.cuda.device_count())
    ]


def has_tensor_cores(gpu: GpuInfo) -> bool:
    return gpu.compute_capability is not None and tuple(gpu.compute_capability) >= TENSOR_CORE_CAPABILITY


def device_description(gpus: Sequence[GpuInfo], flags: Iterable[str]) -> str:
    """The device training runs on, as the precision choice names it: the first GPU, else the CPU."""
    if gpus:
        capability = gpus[0].compute_capability
        return f"GPU {gpus[0].name}" + (
            f" (compute capability {capability[0]}.{capability[1]})" if capability else ""
        )
    native = native_bfloat16_flags(flags)
    return f"CPU ({', '.join(native) if native else 'no native bfloat16 flag'})"


def choose_precision(
    requested: str,
    gpus: Sequence[GpuInfo],
    flags: Iterable[str],
    calibrate: Callable[[Sequence[str]], Mapping[str, float]] | None = None,
    reduced_precision_problem: Callable[[str], str | None] | None = None,
) -> PrecisionChoice:
    """The policy for ``requested`` on a machine with ``gpus`` and CPU ``flags``.

    ``calibrate(policies) -> {policy: ms per step}`` is called only for ``auto`` on a CPU with native
    bfloat16; without it such a CPU gets float32 (the safe choice), and the reason says it was not timed.
    ``reduced_precision_problem("bfloat16")`` says why the framework cannot train in bfloat16 on this CPU
    (``None``: it can): then ``auto`` takes float32 without calibrating, and an explicit bfloat16 is a
    :class:`~mammogan_lib.core.config.ParameterError` naming ``precision``.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision {requested!r} is not one of {PRECISIONS}")
    flags = set(flags)
    native = native_bfloat16_flags(flags)
    device = device_description(gpus, flags)
    tensor_cores = bool(gpus) and has_tensor_cores(gpus[0])

    def choice(policy: str, reason: str, calibration: Mapping[str, float] | None = None) -> PrecisionChoice:
        return PrecisionChoice(requested, policy, reason, device, dict(calibration) if calibration else None)

    problem = None if gpus or reduced_precision_problem is None else reduced_precision_problem("bfloat16")
    if problem and requested in ("mixed", "mixed_bfloat16"):
        raise ParameterError(
            f"parameter 'precision' is {requested!r}, which is bfloat16 on a CPU, but {problem}: "
            "set precision to float32 or auto, or train on the tensorflow or jax backend",
            "precision",
        )
    if requested == "mixed":
        if gpus:
            return choice("mixed_float16", "mixed precision on a GPU is float16 with loss scaling")
        return choice("mixed_bfloat16", f"mixed precision on a CPU is bfloat16{'' if native else EMULATED}")
    if requested != "auto":
        if requested == "mixed_bfloat16" and not gpus and not native:
            return choice(requested, f"as set{EMULATED}")
        return choice(requested, "as set")
    if gpus:
        if tensor_cores:
            return choice("mixed_float16", "this GPU has tensor cores: float16 with loss scaling")
        return choice("float32", "this GPU has no tensor cores (compute capability below 7.0)")
    if not flags:
        return choice("float32", "the CPU's flags could not be read, so no native bfloat16 is assumed")
    if not native:
        return choice("float32", "this CPU has no native bfloat16 (no avx512_bf16, amx_bf16 or bf16 flag)")
    if problem:
        return choice("float32", f"this CPU has native bfloat16 ({', '.join(native)}), but {problem}")
    if calibrate is None:
        return choice("float32", f"this CPU has native bfloat16 ({', '.join(native)}) but it was not timed")
    measured = calibrate(("float32", "mixed_bfloat16"))
    bf16, fp32 = measured["mixed_bfloat16"], measured["float32"]
    timing = f"calibrated on this model: bfloat16 {bf16:.1f} ms/step, float32 {fp32:.1f} ms/step"
    flagged = ", ".join(native)
    if bf16 < CALIBRATION_MARGIN * fp32:
        return choice("mixed_bfloat16", f"this CPU has native bfloat16 ({flagged}); {timing}", measured)
    return choice("float32", f"native bfloat16 ({flagged}) is not clearly faster here; {timing}", measured)


def resumed_choice(
    policy: str, checkpoint: Path, gpus: Sequence[GpuInfo], flags: Iterable[str]
) -> PrecisionChoice:
    """``auto`` resuming a run: the checkpoint's policy, so that the resume is exact."""
    reason = (
        f"kept from the checkpoint being resumed ({checkpoint.name}): a run keeps one policy, so that "
        "a resume gives the losses of an uninterrupted run"
    )
    return PrecisionChoice("auto", policy, reason, device_description(gpus, flags))


def torch_cpu_problem(dtype: str) -> str | None:
    """Why the torch backend cannot train our models in ``dtype`` on the CPU here, or ``None`` when it can.

    Where oneDNN has no kernel for the dtype, torch takes its fallback convolution, whose weight gradient
    fails for a one-channel output in Keras's channels-last layout ("slow_conv2d: grad_weight must be
    contiguous"): the generators' last convolution. A probe of exactly that convolution tells, whatever
    torch version and CPU this is.
    """
    import torch

    ops = import_keras().ops
    images = torch.zeros((1, 8, 8, 2), dtype=getattr(torch, dtype), requires_grad=True)
    kernel = torch.zeros((3, 3, 2, 1), dtype=getattr(torch, dtype), requires_grad=True)
    try:
        torch.autograd.grad(ops.sum(ops.conv(images, kernel, padding="same")), kernel)
    except RuntimeError as error:
        return (
            f"torch {torch.__version__} cannot take a convolution's gradient in {dtype} on this CPU ({error})"
        )
    return None


@contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Set Keras's global dtype policy to ``name`` inside the block; restore the previous one after."""
    keras = import_keras()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
