"""Validated configuration objects, one per notebook stage.

Parameters flow ``params/*.yaml`` -> papermill -> a notebook's ``parameters`` cell -> ``<Stage>Config`` ->
library calls. Each notebook builds its config with ``<Stage>Config.from_namespace(globals())``; the
fields of that class are exactly the notebook's parameters (``tests/test_params.py`` checks it).

A field's type comes from its annotation (``str``, ``int``, ``float``, ``bool``, ``list[str]``,
``list[int]``); ``metadata`` may add ``min``, ``max``, ``choices`` and ``doc``. A wrong type, a value out of
range, or an unknown key raises :class:`ParameterError` naming the key, the value, what was expected and,
when known, the YAML file it came from.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from mammogan_lib.frameworks import BACKENDS
from mammogan_lib.runs import RunPaths

EXP_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
KAGGLE_DATASET_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*/[A-Za-z0-9][A-Za-z0-9_-]*$")
# the feature networks 05 and 06 know by name (their weights are found by name too)
BUILT_IN_FEATURE_NETWORKS = ("effnet_lite0", "inception", "dinov2")
SVM_FEATURE_NETWORKS = ("effnet_lite0", "resnet50")
# a TorchScript network's name becomes its keys' suffix: it must not pass for another network's keys
FEATURE_NETWORK_NAME_PATTERN = re.compile(r"^(?!random)[a-z][a-z0-9_]*$")
RESERVED_FEATURE_NETWORK_NAMES = ("resnet50", "radiomics", "frd")


class ParameterError(ValueError):
    """A parameter is unknown, of the wrong type, or out of range; ``key`` names it where one does."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


CHECKOUT_ROOT = Path(__file__).resolve().parent.parent
"""The folder this library's code lives in: in a checkout, the one holding ``params/``, ``notebooks/`` and
the Kaggle template, whose git commit the provenance records. Where relative *parameters* resolve is
:func:`project_root`: found from the working folder, so that it also means something where the library is
installed as a wheel (a Kaggle kernel)."""
SESSION_STARTED_VARIABLE = "MAMMOGAN_SESSION_STARTED"
"""``time.time()`` when the pipeline started this session (inherited by the stage kernels); the training time
budget counts from it."""


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: cwd) holding ``params/`` and ``notebooks/``.

    Jupyter starts a notebook's kernel in ``notebooks/`` while papermill and make run from the repository
    root; resolving against the project root makes ``runs_dir: runs`` mean the same folder in both. Outside
    a checkout (e.g. a Kaggle kernel) the start folder itself is used.
    """
    start = Path(start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "params").is_dir() and (folder / "notebooks").is_dir():
            return folder
    return start


def resolve_path(path: str | Path, start: Path | None = None) -> Path:
    """An absolute path: ``path`` itself if absolute, else relative to :func:`project_root`."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root(start) / path


def param(default: Any, doc: str, **checks: Any) -> Any:
    """Declare a config field: its default (``params/base.yaml``'s value; ``tests/test_params.py`` checks
    that the two agree), documentation and checks (min, max, choices)."""
    metadata = {"doc": doc, **checks}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def _where(key: str, origins: Mapping[str, str] | None) -> str:
    if origins and key in origins:
        return f" (set in {origins[key]})"
    return ""


def _check_type(key: str, value: Any, annotation: Any, where: str) -> None:
    origin = typing.get_origin(annotation)
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise ParameterError(f"parameter {key!r}{where}: expected a list, got {value!r}", key)
        for item in value:
            _check_type(f"{key}[]", item, item_type, where)
        return
    if annotation is bool:
        ok = isinstance(value, bool)
    elif annotation is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif annotation is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        ok = isinstance(value, annotation)
    if not ok:
        raise ParameterError(
            f"parameter {key!r}{where}: expected {annotation.__name__}, got {type(value).__name__} {value!r}",
            key.removesuffix("[]"),
        )


def _check_value(key: str, value: Any, meta: Mapping[str, Any], where: str) -> None:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if "choices" in meta and item not in meta["choices"]:
            raise ParameterError(
                f"parameter {key!r}{where}: {item!r} is not one of {list(meta['choices'])}", key
            )
        if "min" in meta and item < meta["min"]:
            raise ParameterError(
                f"parameter {key!r}{where}: {item!r} is below the minimum {meta['min']}", key
            )
        if "max" in meta and item > meta["max"]:
            raise ParameterError(
                f"parameter {key!r}{where}: {item!r} is above the maximum {meta['max']}", key
            )


PROGRESSIVE_ARCHITECTURES: tuple[str, ...] = ("baseline",)
"""Architectures whose models can grow stage by stage (:mod:`mammogan_lib.models.progressive`)."""


def progressive_errors(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(parameter, message)`` for every inconsistency of the progressive parameters in ``values`` (a
    stage's parameters: ``resolution``, and for training ``architecture`` and ``epochs`` too)."""
    resolutions = list(values.get("progressive_resolutions") or [])
    stage_epochs = values.get("progressive_epochs")
    errors: list[tuple[str, str]] = []
    if not resolutions:
        if stage_epochs:
            errors.append(
                (
                    "progressive_epochs",
                    f"is {stage_epochs} but 'progressive_resolutions' is [] (training is not progressive)",
                )
            )
        return errors
    if len(resolutions) < 2:
        errors.append(
            ("progressive_resolutions", f"needs at least two resolutions to grow through, got {resolutions}")
        )
    doubling = all(b == 2 * a for a, b in zip(resolutions, resolutions[1:], strict=False))
    if not doubling:
        errors.append(
            (
                "progressive_resolutions",
                f"{resolutions}: each resolution must be twice the one before (one block pair per stage), "
                "e.g. [64, 128]",
            )
        )
    if resolutions[-1] != values.get("resolution"):
        errors.append(
            (
                "progressive_resolutions",
                f"ends at {resolutions[-1]}, but 'resolution' is {values.get('resolution')}: the last stage "
                "trains at the run's resolution",
            )
        )
    architecture = values.get("architecture")
    if architecture is not None and architecture not in PROGRESSIVE_ARCHITECTURES:
        errors.append(
            (
                "progressive_resolutions",
                f"progressive training supports 'architecture' {list(PROGRESSIVE_ARCHITECTURES)}, "
                f"not {architecture!r}: "
                "set progressive_resolutions: [] or architecture: baseline",
            )
        )
    if stage_epochs is None:
        return errors
    if len(stage_epochs) != len(resolutions):
        errors.append(
            (
                "progressive_epochs",
                f"has {len(stage_epochs)} values for the {len(resolutions)} stages of "
                f"'progressive_resolutions' "
                f"{resolutions}: give one number of epochs per stage",
            )
        )
    elif sum(stage_epochs) != values.get("epochs"):
        errors.append(
            (
                "progressive_epochs",
                f"{stage_epochs} sum to {sum(stage_epochs)} epochs but 'epochs' is {values.get('epochs')}: "
                f"set epochs: "
                f"{sum(stage_epochs)} (the stages' epochs are the run's)",
            )
        )
    short = [e for e in stage_epochs[1:] if e < 2]
    if short:
        errors.append(
            (
                "progressive_epochs",
                f"{stage_epochs}: every stage after the first needs at least 2 epochs (a fade and a stable "
                "part)",
            )
        )
    return errors


def raise_progressive_errors(values: Mapping[str, Any]) -> None:
    """One :class:`ParameterError` listing every problem :func:`progressive_errors` finds (none: return)."""
    raise_all(
        [ParameterError(f"parameter {key!r}: {message}", key) for key, message in progressive_errors(values)]
    )


@dataclass(frozen=True)
class StageConfig:
    """Fields shared by every stage: where the run lives and how it is seeded."""

    notebook: ClassVar[str] = ""

    exp_id: str = param("base", "Run name; outputs go to <runs_dir>/<exp_id>/.")
    runs_dir: str = param("runs", "Folder holding one sub-folder per run.")
    data_dir: str = param("data", "Folder for generated datasets and caches shared between runs.")
    seed: int = param(0, "Seed for every random choice of the run.", min=0)
    workers: int = param(0, "Processes for image work; 0 means one per CPU core.", min=0)

    def __post_init__(self) -> None:
        validate_values(dataclasses.asdict(self), type(self))
        if not EXP_ID_PATTERN.match(self.exp_id):
            raise ParameterError(
                f"parameter 'exp_id': {self.exp_id!r} must be letters, digits, '_', '.' or '-' "
                "(it names a folder)",
                "exp_id",
            )

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_namespace(cls, namespace: Mapping[str, Any]) -> typing.Self:
        """Build the config from a notebook's globals(): takes exactly this stage's parameters."""
        missing = [name for name in cls.field_names() if name not in namespace]
        if missing:
            raise ParameterError(f"{cls.notebook}: parameters {missing} are not defined in the notebook")
        return cls(**{name: namespace[name] for name in cls.field_names()})

    @property
    def run_dir(self) -> Path:
        return resolve_path(self.runs_dir) / self.exp_id

    @property
    def paths(self) -> RunPaths:
        """Every file and folder of this run (:class:`mammogan_lib.runs.RunPaths`)."""
        return RunPaths(self.run_dir)

    @property
    def data_path(self) -> Path:
        return resolve_path(self.data_dir)

    @property
    def worker_count(self) -> int:
        return self.workers or os.cpu_count() or 1


def validate_values(
    params: Mapping[str, Any], config_class: type[StageConfig], origins: Mapping[str, str] | None = None
) -> None:
    """Check the type and range of every key of ``params`` that ``config_class`` declares; one
    :class:`ParameterError` lists every bad value."""
    raise_all(value_errors(params, config_class, origins))


def value_errors(
    params: Mapping[str, Any], config_class: type[StageConfig], origins: Mapping[str, str] | None = None
) -> list[ParameterError]:
    """The type and range errors of every key of ``params`` that ``config_class`` declares."""
    hints = typing.get_type_hints(config_class)
    errors = []
    for f in dataclasses.fields(config_class):
        if f.name in params:
            where = _where(f.name, origins)
            try:
                _check_type(f.name, params[f.name], hints[f.name], where)
                _check_value(f.name, params[f.name], f.metadata, where)
            except ParameterError as error:
                errors.append(error)
    return errors


def raise_all(errors: Sequence[ParameterError]) -> None:
    """Raise one :class:`ParameterError` listing every distinct message of ``errors`` (none: return)."""
    messages = list(dict.fromkeys(str(error) for error in errors))
    if len(messages) == 1:
        raise errors[0]
    if messages:
        raise ParameterError(f"{len(messages)} parameter problems:\n" + "\n".join(f"- {m}" for m in messages))


@dataclass(frozen=True)
class FilterConfig(StageConfig):
    """01_filter: read a dataset, select malignant full mammograms, score and keep well-captured breasts."""

    notebook: ClassVar[str] = "01_filter"

    dataset_root: str = param("", "Dataset folder; '' generates and uses the embedded phantom.")
    dataset_layout: str = param(
        "auto",
        "Dataset layout.",
        choices=(
            "auto",
            "kaggle_jpeg",
            "tcia_dicom",
            "image_folder",
            "roi_patches",
            "mini_mias",
            "inbreast",
            "vindr_mammo",
            "rsna_screening",
        ),
    )
    phantom_images: int = param(1570, "Phantom: full mammograms to generate.", min=8)
    phantom_height: int = param(1024, "Phantom: image height in pixels.", min=256, max=4096)
    phantom_cut_fraction: float = param(
        0.3, "Phantom: share of breasts cut by the image edge.", min=0.0, max=1.0
    )
    phantom_healthy_images: int = param(500, "Phantom: healthy images per healthy set.", min=0)
    phantom_seed: int = param(0, "Phantom: seed (separate from `seed` so data stay fixed).", min=0)
    pathology: str = param(
        "MALIGNANT",
        "Pathology to keep; 'any' = every pathology but NORMAL (every lesion crop of a roi_patches set).",
        choices=("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK", "any"),
    )
    abnormalities: list[str] = param(
        ["mass", "calcification"],
        "Finding types to keep: mass, calcification, another type of the dataset (asymmetry, ...) or 'any'.",
    )
    birads_min: int = param(
        4,
        "BI-RADS-only data (VinDr-Mammo, INbreast): keep findings of BI-RADS >= this instead of `pathology`.",
        min=0,
        max=6,
    )
    shape_threshold: float = param(
        0.75, "Keep images whose shape confidence is at least this.", min=0.0, max=1.0
    )
    score_height: int = param(512, "Height images are scored at (speed vs precision).", min=128, max=2048)
    preview_count: int = param(16, "Images shown in preview grids.", min=1, max=64)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "abnormalities", finding_type_names(self.abnormalities))


def finding_type_names(values: Sequence[str]) -> list[str]:
    """The canonical names of the finding types of ``abnormalities`` ('Architectural distortion' ->
    'architectural_distortion', 'calcs' -> 'calcification'; 'any' stays: every type, also findings whose
    type is not given), in order, once each; one :class:`ParameterError` names every value that is not a
    finding type."""
    from mammogan_lib.datasets.values import (
        ANY_FINDING_TYPE,
        NO_FINDING,
        NOT_GIVEN,
        BadValueError,
        normalise_finding_type,
    )

    names, problems = [], []
    for value in values:
        try:
            if str(value).strip().lower() == ANY_FINDING_TYPE:
                name = ANY_FINDING_TYPE
            else:
                name = normalise_finding_type(value, "parameter 'abnormalities'")
        except BadValueError as error:
            problems.append(f"{value!r} {error.problem}")
            continue
        if name in (NO_FINDING, NOT_GIVEN):
            problems.append(f"{value!r} means no finding, which cannot be selected")
        elif name not in names:
            names.append(name)
    if not values:
        problems.append("[] selects nothing")
    if problems:
        raise ParameterError(
            f"parameter 'abnormalities': {'; '.join(problems)}; expected a list of finding types in words, "
            "e.g. [mass, calcification], [architectural_distortion] or [any]",
            "abnormalities",
        )
    return names


@dataclass(frozen=True)
class PreprocessConfig(StageConfig):
    """02_preprocess: breast extraction, orientation, resize, scaling to [-1, 1], array cache."""

    notebook: ClassVar[str] = "02_preprocess"

    resolution: int = param(128, "Training resolution (square).", choices=(64, 128, 256))
    resize_mode: str = param(
        "pad",
        "'pad' keeps the breast's aspect ratio; 'stretch' resizes to a square as the thesis did.",
        choices=("pad", "stretch"),
    )
    holdout_fraction: float = param(
        0.2, "Share of patients held out: never trained on; 05/06 test on them.", min=0.0, max=0.9
    )
    progressive_resolutions: list[int] = param(
        [],
        "Progressive training's stages (e.g. [64, 128]): 02 also writes the array cache at each; [] = none.",
        choices=(64, 128, 256),
    )
    preview_count: int = param(16, "Images shown in preview grids.", min=1, max=64)
    training_images: str = param(
        "full",
        "full = whole breasts; lesion_patches = square patches centred on the selected findings.",
        choices=("full", "lesion_patches"),
    )
    patch_scale: float = param(
        2.0, "Lesion patches: side = this x the finding box's longer side (source pixels).", min=1.0, max=20.0
    )
    patch_min_side: int = param(
        256, "Lesion patches: the smallest side in source pixels (small calcifications).", min=8, max=8192
    )
    patch_at_border: str = param(
        "shift",
        "Lesion patches crossing the image border: shift = moved inside; skip = finding skipped.",
        choices=("shift", "skip"),
    )
    patch_background_per_finding: int = param(
        1, "Non-tumour patches (for 06) cut per lesion patch from the same image.", min=0, max=100
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        raise_progressive_errors(dataclasses.asdict(self))

    @property
    def patch_geometry(self):
        """The lesion-patch parameters as one :class:`~mammogan_lib.patches.PatchGeometry`."""
        from mammogan_lib.patches import PatchGeometry

        return PatchGeometry(
            self.resolution,
            self.patch_scale,
            self.patch_min_side,
            self.patch_at_border,
            self.patch_background_per_finding,
        )


@dataclass(frozen=True)
class TrainConfig(StageConfig):
    """03_train_gan: one experiment's GAN, trained on the array cache of 02, resumably."""

    notebook: ClassVar[str] = "03_train_gan"

    resolution: int = param(
        128, "Training resolution (square); must match 02's cache.", choices=(64, 128, 256)
    )
    architecture: str = param(
        "baseline",
        "Generator: baseline (exp3), deep (exp1), stylegan (exp2), fastgan (exp7: FastGAN-style G and "
        "self-supervised D, hinge loss).",
        choices=("baseline", "deep", "stylegan", "fastgan"),
    )
    latent_dim: int = param(128, "Length of the latent vector z (thesis: 128).", min=1, max=4096)
    width: float = param(
        1.0, "Multiplier of every layer's filters; 1.0 is the thesis's model.", min=0.01, max=8.0
    )
    d_dropout: float = param(0.2, "Dropout after each D block (exp3 0.2, exp1/exp2 0.3).", min=0.0, max=0.9)
    lr_g: float = param(0.0001, "Adam learning rate of the generator (thesis 1e-4).", min=1e-9, max=1.0)
    lr_d: float = param(1e-05, "Adam learning rate of the discriminator (thesis 1e-5).", min=1e-9, max=1.0)
    beta1: float = param(0.5, "Adam beta_1 of both optimisers (thesis 0.5).", min=0.0, max=0.999)
    batch_size: int = param(32, "Images per step (thesis 32).", min=1, max=4096)
    epochs: int = param(20000, "Epochs to train to (a resume continues up to this).", min=1)
    steps_per_epoch: int = param(0, "Steps per epoch; 0 = one full pass (N // batch_size).", min=0)
    precision: str = param(
        "auto",
        "auto (what the device computes natively), float32, mixed (bfloat16 on CPU, float16 on GPU), "
        "mixed_bfloat16 or mixed_float16.",
        choices=("auto", "float32", "mixed", "mixed_bfloat16", "mixed_float16"),
    )
    augment_policy: str = param("", "DiffAugment policy, e.g. 'translation,cutout'; '' = none.")
    r1_gamma: float = param(
        0.0,
        "R1 penalty gamma/2 * E|grad_x D(x_real)|^2 on D's logit (Mescheder 2018): keeps D smooth on the few "
        "real images; 0 = off.",
        min=0.0,
        max=1000.0,
    )
    d_spectral_norm: bool = param(
        False, "Spectral normalisation of D's layers (Miyato 2018): bounds how sharply D can fit few images."
    )
    lecam_weight: float = param(
        0.0,
        "LeCam regulariser (Tseng 2021) on D's logits against EMA anchors: keeps D's outputs from drifting "
        "apart on small data; 0 = off.",
        min=0.0,
        max=1000.0,
    )
    g_ema_decay: float = param(
        0.0,
        "Keep an exponential moving average of G's weights with this decay (e.g. 0.999) and generate with "
        "it (04-06, the export); 0 = off, the raw generator.",
        min=0.0,
        max=0.9999,
    )
    d_reconstruction_weight: float = param(
        1.0,
        "fastgan: weight of the self-supervised D's reconstruction loss (its decoders rebuild real images "
        "from its features); 0 = off.",
        min=0.0,
        max=100.0,
    )
    conditional: bool = param(
        False,
        "Class-conditional G and D on the finding type 02 labels each image with (mass, calcification): a "
        "class embedding into G's input, a projection discriminator (Miyato & Koyama 2018).",
    )
    progressive_resolutions: list[int] = param(
        [],
        "Progressive training (Karras 2018): the resolutions G and D grow through, ending at resolution, "
        "e.g. [64, 128]; [] = ordinary training at resolution.",
        choices=(64, 128, 256),
    )
    progressive_epochs: list[int] = param(
        [], "Epochs of each progressive stage; they sum to epochs. [] with progressive_resolutions [].", min=1
    )
    progressive_fade_fraction: float = param(
        0.5,
        "Share of each later progressive stage over which its new block fades in (ProGAN: half); 0 = none.",
        min=0.0,
        max=1.0,
    )
    checkpoint_every: int = param(500, "Write a checkpoint every this many epochs (and at the end).", min=1)
    sample_every: int = param(500, "Write the fixed-noise sample grid every this many epochs.", min=1)
    keep_last: int = param(3, "Checkpoints kept besides keep_epochs (the newest is the resume point).", min=1)
    keep_epochs: list[int] = param(
        [16000, 20000], "[start, end]: also keep every checkpoint in this epoch range; [] = none."
    )
    divergence_patience: int = param(3, "Stop after this many all-black sample grids in a row.", min=1)
    sample_grid: int = param(4, "The sample grid is sample_grid x sample_grid images.", min=1, max=16)
    backend: str = param(
        "tensorflow",
        "Keras backend of the GAN: tensorflow (the thesis's), jax (pip install -e '.[jax]'), or torch.",
        choices=BACKENDS,
    )
    jit_compile: bool = param(
        False, "TensorFlow: compile the train step with XLA (jax always compiles it; torch runs it eagerly)."
    )
    data_parallel: bool = param(
        True, "With several GPUs, train on all of them (MirroredStrategy; batch_size is the global batch)."
    )
    time_budget_hours: float = param(
        0.0,
        "Stop training cleanly, with a checkpoint, this many hours after the pipeline started; 0 = none.",
        min=0.0,
    )
    train_minutes: float = param(
        0.0,
        "Stop training once its steps have taken this many minutes in all, summed over sessions (compare "
        "configurations at equal compute on one machine); 0 = none, epochs alone.",
        min=0.0,
    )
    restart_training: bool = param(
        False, "Delete this run's checkpoints, samples and losses and start again."
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        from mammogan_lib.augment import parse_policy
        from mammogan_lib.checkpoint import keep_range

        try:
            keep_range(self.keep_epochs)
        except ValueError as error:
            raise ParameterError(f"parameter {error}", "keep_epochs") from None

        try:
            parse_policy(self.augment_policy)
        except ValueError as error:
            raise ParameterError(f"parameter 'augment_policy': {error}", "augment_policy") from None
        if self.jit_compile and self.backend == "torch":
            raise ParameterError(
                "parameter 'backend' is 'torch', but jit_compile: true compiles TensorFlow's step with XLA, "
                "and the torch backend runs the step eagerly (set jit_compile: false)",
                "backend",
            )
        raise_progressive_errors(dataclasses.asdict(self))
        raise_all(
            [ParameterError(f"parameter {key!r}: {message}", key) for key, message in fastgan_errors(self)]
        )


def fastgan_errors(settings: Any) -> list[tuple[str, str]]:
    """``(parameter, message)`` for every setting ``architecture: fastgan`` does not train with."""
    if settings.architecture != "fastgan":
        return []
    errors = []
    if settings.backend != "tensorflow":
        errors.append(
            (
                "backend",
                f"is {settings.backend!r}, but architecture 'fastgan' trains on the tensorflow backend only "
                "(its hinge and reconstruction losses are written in the tensorflow step): set backend: "
                "tensorflow",
            )
        )
    unsupported = {
        "d_dropout": (settings.d_dropout, 0.0, "its discriminator has no dropout (set d_dropout: 0)"),
        "r1_gamma": (settings.r1_gamma, 0.0, "R1 is not wired into its hinge step (set r1_gamma: 0)"),
        "lecam_weight": (
            settings.lecam_weight,
            0.0,
            "LeCam is not wired into its hinge step (set lecam_weight: 0)",
        ),
        "conditional": (
            settings.conditional,
            False,
            "it has no class-conditional form (set conditional: false)",
        ),
    }
    for key, (value, allowed, why) in unsupported.items():
        if value != allowed:
            errors.append((key, f"is {value!r}, but with architecture 'fastgan' {why}"))
    return errors


@dataclass(frozen=True)
class GenerateConfig(StageConfig):
    """04_generate: images from chosen checkpoints, grids across epochs, a latent interpolation."""

    notebook: ClassVar[str] = "04_generate"

    generate_count: int = param(500, "Images generated from each chosen checkpoint.", min=1)
    generate_epochs: list[int] = param([], "Checkpoint epochs to generate from; [] = the newest.", min=1)
    grid_count: int = param(8, "Latents shown per epoch in the grid across epochs.", min=1, max=16)
    interpolation_steps: int = param(10, "Images in the latent interpolation strip.", min=2, max=32)
    curve_count: int = param(200, "Images from every kept checkpoint, for 05's curves; 0 = none.", min=0)
    backend: str = param(
        "tensorflow", "Keras backend to generate on (any loads a checkpoint of any).", choices=BACKENDS
    )


@dataclass(frozen=True)
class EvaluationConfig(StageConfig):
    """Fields 05_metrics and 06_svm share: which generated set, and how features are computed."""

    evaluate_epoch: int = param(0, "Generated set to evaluate, by checkpoint epoch; 0 = the newest.", min=0)
    allow_random_weights: bool = param(
        False,
        "A network without pretrained weights here (InceptionV3, DINOv2, ResNet50 offline): false = left "
        "out, with a warning; true = computed with random weights, every number then says so.",
    )
    feature_batch_size: int = param(32, "Images per forward pass of the feature networks.", min=1, max=1024)


@dataclass(frozen=True)
class MetricsConfig(EvaluationConfig):
    """05_metrics: FID/KID, PSNR/SSIM vs the nearest real image, memorisation, texture, losses, comparison."""

    notebook: ClassVar[str] = "05_metrics"

    inception_weights: str = param(
        "", "InceptionV3 FID weights file; '' = the torch hub cache or a download."
    )
    feature_networks: list[str] = param(
        ["effnet_lite0", "inception", "dinov2"],
        "Feature networks every set-level metric is computed in, the first leading the headline; a network "
        "without pretrained weights here is left out (or random: allow_random_weights); any other name is "
        "the TorchScript network of feature_network_path.",
    )
    frd: bool = param(
        True, "Fréchet Radiomic Distance (FRD v1: radiomic features, no weights) beside the feature networks."
    )
    dinov2_weights: str = param(
        "", "DINOv2 ViT-B/14 weights file; '' = the torch hub cache (facebookresearch/dinov2) or a download."
    )
    feature_network_path: str = param(
        "",
        "A TorchScript feature network (e.g. a RadImageNet ResNet50), named in feature_networks by the name "
        "its keys carry; '' = none.",
    )
    kid_subsets: int = param(100, "KID: random subsets averaged.", min=1)
    kid_subset_size: int = param(1000, "KID: images per subset (clipped to the smaller set).", min=2)
    prdc_k: int = param(
        5, "Neighbours k of the k-NN manifolds of precision, recall, density and coverage.", min=1, max=100
    )
    bootstrap_repeats: int = param(
        200, "Bootstrap resamples of the images behind each 95 % interval; 0 = no intervals.", min=0
    )
    memorisation_quantile: float = param(
        0.05,
        "Flag generated images nearer a training image than this quantile of held-out images are.",
        min=0.0,
        max=0.5,
    )
    loss_smoothing: int = param(50, "Steps in the rolling mean of the loss curves.", min=1)
    compare_runs: list[str] = param(
        ["exp1_deep", "exp2_stylegan", "exp3_baseline", "exp4_diffaug", "exp5_conditional"],
        "Runs (exp_id) in the experiment comparison table, when they exist.",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        networks = self.feature_networks
        if len(set(networks)) != len(networks) or not (networks or self.frd):
            raise ParameterError(
                f"parameter 'feature_networks': {networks!r} must name each network once, and at least one "
                "unless frd is true, e.g. [effnet_lite0, inception, dinov2]",
                "feature_networks",
            )
        problems = [
            f"{name!r} is not one of {list(BUILT_IN_FEATURE_NETWORKS)}, nor a name for the TorchScript "
            "network of feature_network_path (lower-case letters, digits and '_', starting with a letter)"
            for name in self.torchscript_networks
            if not FEATURE_NETWORK_NAME_PATTERN.match(name) or name in RESERVED_FEATURE_NETWORK_NAMES
        ]
        if len(self.torchscript_networks) > 1:
            problems.append(
                f"{self.torchscript_networks} all stand for the one network of feature_network_path"
            )
        if self.torchscript_networks and not self.feature_network_path:
            problems.append(
                f"{self.torchscript_networks[0]!r} is not one of {list(BUILT_IN_FEATURE_NETWORKS)}; "
                "for a TorchScript network of that name set feature_network_path"
            )
        if self.feature_network_path and not self.torchscript_networks:
            problems.append(
                f"feature_network_path is set ({self.feature_network_path}) but no name in feature_networks "
                "stands for it: add the name its keys should carry, e.g. [inception, dinov2, radimagenet]"
            )
        if problems:
            raise ParameterError(f"parameter 'feature_networks': {'; '.join(problems)}", "feature_networks")

    @property
    def torchscript_networks(self) -> list[str]:
        """The names in ``feature_networks`` that are not built in (at most one is valid)."""
        return [name for name in self.feature_networks if name not in BUILT_IN_FEATURE_NETWORKS]

    @property
    def comparison_settings(self) -> dict[str, Any]:
        """What the set comparisons take (metrics.set_tables, metrics.class_results)."""
        names = (
            "kid_subsets",
            "kid_subset_size",
            "seed",
            "prdc_k",
            "bootstrap_repeats",
            "memorisation_quantile",
        )
        return {name: getattr(self, name) for name in names}

    def weights_path(self, network: str) -> str:
        """The weights-file parameter of a feature network ('' = hub cache or download); for the
        TorchScript network, its file."""
        built_in = {"effnet_lite0": "", "inception": self.inception_weights, "dinov2": self.dinov2_weights}
        return built_in.get(network, self.feature_network_path)


@dataclass(frozen=True)
class SvmConfig(EvaluationConfig):
    """06_svm: ResNet50 features -> linear SVM, real-only vs generated-enhanced, repeated, source control."""

    notebook: ClassVar[str] = "06_svm"

    svm_feature_networks: list[str] = param(
        ["effnet_lite0", "resnet50"],
        "Feature networks the SVM study runs in, the first leading the headline: effnet_lite0 (ImageNet "
        "EfficientNet-Lite0, weights in its package) and resnet50 (the thesis's; left out without pretrained "
        "weights unless allow_random_weights).",
    )
    resnet_weights: str = param("", "ResNet50 ImageNet weights file; '' = the torch hub cache or a download.")
    non_tumour_root: str = param(
        "",
        "Non-tumour images from another source (the thesis's design); '' = phantom's healthy_other_source.",
    )
    non_tumour_same_source_root: str = param(
        "",
        "Non-tumour images from the tumours' own source (confound control); '' = the phantom's healthy set.",
    )
    non_tumour_kaggle_dataset: str = param(
        "",
        "Kaggle kernels: the dataset (owner/slug) attached and located as non_tumour_root; '' = none.",
    )
    svm_train_per_class: int = param(400, "Training images per class (thesis 400).", min=2)
    svm_test_per_class: int = param(100, "Test images per class (thesis 100).", min=1)
    svm_generated: int = param(100, "Generated tumours replacing real ones (thesis 100).", min=0)
    svm_generated_class: str = param(
        "",
        "A conditional run's generated images of this class only (e.g. mass) replace real tumours; '' = all.",
    )
    svm_repeats: int = param(10, "Seeded draws of train and test sets (the thesis made one).", min=1)
    svm_c: float = param(1.0, "SVM regularisation C.", min=1e-6)

    def weights_path(self, network: str) -> str:
        """The weights-file parameter of a feature network ('' = its package, the hub cache or a download)."""
        return self.resnet_weights if network == "resnet50" else ""

    def __post_init__(self) -> None:
        super().__post_init__()
        from mammogan_lib.classify import thesis_designs

        try:
            thesis_designs(self.svm_train_per_class, self.svm_generated)
        except ValueError as error:
            raise ParameterError(str(error), "svm_generated") from None
        networks = self.svm_feature_networks
        unknown = [name for name in networks if name not in SVM_FEATURE_NETWORKS]
        if unknown or not networks or len(set(networks)) != len(networks):
            raise ParameterError(
                f"parameter 'svm_feature_networks': {networks!r} must name each of "
                f"{list(SVM_FEATURE_NETWORKS)} at most once, and at least one"
                + (f" ({unknown} are not among them)" if unknown else ""),
                "svm_feature_networks",
            )
        dataset = self.non_tumour_kaggle_dataset
        if dataset and not KAGGLE_DATASET_PATTERN.match(dataset):
            raise ParameterError(
                f"parameter 'non_tumour_kaggle_dataset': {dataset!r} is not a Kaggle dataset handle "
                "(expected owner/slug, e.g. harrisontwwhite/final-final-rsna-breast-cancer-dataset)",
                "non_tumour_kaggle_dataset",
            )


STAGE_CONFIGS: tuple[type[StageConfig], ...] = (
    FilterConfig,
    PreprocessConfig,
    TrainConfig,
    GenerateConfig,
    MetricsConfig,
    SvmConfig,
)


def validate_params(params: Mapping[str, Any], origins: Mapping[str, str] | None = None) -> None:
    """Check type and range of every known key, for every stage that declares it.

    Unknown keys are rejected by the pipeline, which compares them against papermill's view of the
    notebooks (the source of truth for what a notebook accepts).
    """
    errors = [error for cls in STAGE_CONFIGS for error in value_errors(params, cls, origins)]
    if not errors:  # the stages' schedule is checked on values of the right types
        errors = [
            ParameterError(f"parameter {key!r}{_where(key, origins)}: {message}", key)
            for key, message in progressive_errors(params)
        ]
    raise_all(errors)
