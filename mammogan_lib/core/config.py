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

from mammogan_lib.core.frameworks import BACKENDS
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.core.vocabulary import (
    ANY_FINDING_TYPE,
    NO_FINDING,
    NOT_GIVEN,
    BadValueError,
    normalise_finding_type,
)

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


CHECKOUT_ROOT = Path(__file__).resolve().parents[2]
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
    """Declare a config field: its full-scale default, what it means, its checks (``min``, ``max``,
    ``choices``) and, on the first field of a group, the group's title (``section``). ``make params`` writes
    ``params/base.yaml`` and the notebooks' parameters cells from them
    (:mod:`mammogan_lib.pipeline.parameters`)."""
    metadata = {"doc": doc, **checks}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


SHARED_PARAMETERS: dict[str, dict[str, Any]] = {
    "preview_count": {"default": 16, "doc": "images shown in preview grids", "min": 1, "max": 64},
    "resolution": {
        "default": 128,
        "doc": "training resolution: 64 | 128 | 256 (thesis: 128)",
        "choices": (64, 128, 256),
        "section": "02_preprocess",
    },
    "progressive_resolutions": {
        "default": [],
        "doc": (
            "progressive training (Karras 2018, thesis 3.5.1): grow G and D through these, ending at "
            "resolution, e.g. [64, 128]; 02 writes a cache at each; [] = off"
        ),
        "choices": (64, 128, 256),
    },
    "backend": {
        "default": "tensorflow",
        "doc": (
            "Keras backend of 03 and 04: tensorflow (the thesis's) | jax (pip install -e '.[jax]') | "
            "torch (the whole pipeline on one framework)"
        ),
        "choices": BACKENDS,
    },
}
"""Parameters more than one stage declares, declared once here (:func:`shared_param`)."""


def shared_param(name: str) -> Any:
    """The field ``name`` of :data:`SHARED_PARAMETERS`, the same in every stage declaring it."""
    return param(**SHARED_PARAMETERS[name])


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


DATASET_LAYOUTS: tuple[str, ...] = (
    "kaggle_jpeg",
    "tcia_dicom",
    "image_folder",
    "roi_patches",
    "mini_mias",
    "inbreast",
    "vindr_mammo",
    "rsna_screening",
)
"""The layouts ``dataset_layout`` may name besides 'auto' (:data:`mammogan_lib.data.datasets.loading.LOADERS`
reads each)."""
ARCHITECTURE_NAMES: tuple[str, ...] = ("baseline", "deep", "stylegan", "fastgan")
"""The generators ``architecture`` may name (:data:`mammogan_lib.gan.models.ARCHITECTURES` builds each)."""
PROGRESSIVE_ARCHITECTURES: tuple[str, ...] = ("baseline",)
"""Architectures whose models can grow stage by stage (:mod:`mammogan_lib.gan.models.progressive`)."""


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

    exp_id: str = param("base", "outputs go to <runs_dir>/<exp_id>/", section="run")
    runs_dir: str = param("runs", "relative paths resolve against the project root")
    data_dir: str = param("data", "generated datasets and caches shared between runs")
    seed: int = param(0, "seed for every random choice of the run", min=0)
    workers: int = param(0, "processes for image work; 0 = one per CPU core", min=0)

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
        """Every file and folder of this run (:class:`mammogan_lib.core.run_paths.RunPaths`)."""
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

    dataset_root: str = param(
        "",
        "'' = the embedded phantom; else a dataset root of any layout below (README: Real data)",
        section="01_filter: dataset",
    )
    dataset_layout: str = param(
        "auto",
        (
            "auto | kaggle_jpeg | tcia_dicom | image_folder | roi_patches | mini_mias | inbreast | "
            "vindr_mammo | rsna_screening"
        ),
        choices=("auto", *DATASET_LAYOUTS),
    )
    phantom_images: int = param(
        1570, "phantom full mammograms (the thesis started from 1,570 malignant images)", min=8
    )
    phantom_height: int = param(1024, "phantom image height in pixels", min=256, max=4096)
    phantom_cut_fraction: float = param(
        0.3, "share of phantom breasts whose outline is cut by the image edge", min=0.0, max=1.0
    )
    phantom_healthy_images: int = param(500, "phantom healthy images, in each of the two healthy sets", min=0)
    phantom_seed: int = param(0, "separate from `seed` so the data stay fixed across training seeds", min=0)
    pathology: str = param(
        "MALIGNANT",
        (
            "MALIGNANT | BENIGN | BENIGN_WITHOUT_CALLBACK | any (every pathology but NORMAL: e.g. "
            "every lesion crop of a roi_patches set)"
        ),
        choices=("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK", "any"),
        section="01_filter: selection and shape confidence",
    )
    abnormalities: list[str] = param(
        ["mass", "calcification"],
        (
            "finding types to keep: mass, calcification, any other type of the dataset (asymmetry, "
            "...), or any (every type, also none given: RSNA)"
        ),
    )
    birads_min: int = param(
        4,
        (
            "BI-RADS-only data (VinDr-Mammo, INbreast): keep findings of BI-RADS >= this (4 = "
            "suspicious); not pathology"
        ),
        min=0,
        max=6,
    )
    shape_threshold: float = param(
        0.75,
        (
            "keep images whose breast shape confidence is at least this (thesis: 0.75); pre-cut crops"
            " (roi_patches) are not scored"
        ),
        min=0.0,
        max=1.0,
    )
    score_height: int = param(
        512, "images are decoded this tall for scoring (speed vs precision)", min=128, max=2048
    )
    preview_count: int = shared_param("preview_count")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "abnormalities", finding_type_names(self.abnormalities))


def finding_type_names(values: Sequence[str]) -> list[str]:
    """The canonical names of the finding types of ``abnormalities`` ('Architectural distortion' ->
    'architectural_distortion', 'calcs' -> 'calcification'; 'any' stays: every type, also findings whose
    type is not given), in order, once each; one :class:`ParameterError` names every value that is not a
    finding type."""
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

    resolution: int = shared_param("resolution")
    resize_mode: str = param(
        "pad",
        (
            "pad = keep aspect ratio (a non-square pre-cut crop: centred on black); stretch = plain "
            "resize to a square (thesis)"
        ),
        choices=("pad", "stretch"),
    )
    holdout_fraction: float = param(
        0.2, "share of patients the GAN never sees; 05/06 test on them (thesis: 100 of 500)", min=0.0, max=0.9
    )
    progressive_resolutions: list[int] = shared_param("progressive_resolutions")
    preview_count: int = shared_param("preview_count")
    training_images: str = param(
        "full",
        (
            "full = whole breasts (thesis; pre-cut crops, roi_patches: the crops as stored) | "
            "lesion_patches = square patches centred on each selected finding (refused on pre-cut "
            "crops)"
        ),
        choices=("full", "lesion_patches"),
    )
    patch_scale: float = param(
        2.0,
        ("lesion patches: side = 2 x the finding box's longer side, in the image's own (source) pixels"),
        min=1.0,
        max=20.0,
    )
    patch_min_side: int = param(
        256,
        "lesion patches: smallest side in source pixels, so small calcifications keep context",
        min=8,
        max=8192,
    )
    patch_at_border: str = param(
        "shift",
        (
            "a patch crossing the image border: shift = moved inside (finding off centre) | skip = "
            "finding skipped"
        ),
        choices=("shift", "skip"),
    )
    patch_background_per_finding: int = param(
        1,
        "non-tumour patches (06) per lesion patch, same side, same image, overlapping no finding",
        min=0,
        max=100,
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        raise_progressive_errors(dataclasses.asdict(self))


AUGMENT_POLICIES: tuple[str, ...] = ("translation", "cutout", "brightness", "contrast")
"""The DiffAugment transforms an ``augment_policy`` may name (:mod:`mammogan_lib.gan.augment` implements
each)."""


def parse_policy(policy: str) -> list[str]:
    """The transform names of ``policy`` (comma-separated, spaces ignored); ``ValueError`` if unknown."""
    names = [name.strip() for name in policy.split(",") if name.strip()]
    for name in names:
        if name not in AUGMENT_POLICIES:
            raise ValueError(f"unknown DiffAugment policy {name!r}; allowed: {', '.join(AUGMENT_POLICIES)}")
    return names


def keep_range(keep_epochs: Sequence[int]) -> tuple[int, int] | None:
    """``keep_epochs`` (the parameter: ``[]`` or an inclusive ``[start, end]``, e.g. ``[16000, 20000]``, the
    thesis's sampling window) as ``(start, end)``, or ``None`` for ``[]``."""
    if not keep_epochs:
        return None
    if len(keep_epochs) != 2 or keep_epochs[0] > keep_epochs[1]:
        got = list(keep_epochs)
        raise ValueError(f"'keep_epochs': expected [] or [start, end] with start <= end, got {got}")
    return keep_epochs[0], keep_epochs[1]


@dataclass(frozen=True)
class TrainConfig(StageConfig):
    """03_train_gan: one experiment's GAN, trained on the array cache of 02, resumably."""

    notebook: ClassVar[str] = "03_train_gan"

    resolution: int = shared_param("resolution")
    architecture: str = param(
        "baseline",
        (
            "baseline (exp3) | deep (exp1, deeper generator) | stylegan (exp2, StyleGAN-like) | "
            "fastgan (exp7, FastGAN-style)"
        ),
        choices=ARCHITECTURE_NAMES,
        section="03_train_gan: the experiment (defaults: exp3, the thesis's best; thesis 3.3-3.5)",
    )
    latent_dim: int = param(128, "length of the latent vector z", min=1, max=4096)
    width: float = param(
        1.0, "multiplier of every layer's filters; 1.0 = the thesis's layer sizes", min=0.01, max=8.0
    )
    d_dropout: float = param(
        0.2, "dropout after each discriminator block (exp3 0.2; exp1 and exp2 0.3)", min=0.0, max=0.9
    )
    lr_g: float = param(0.0001, "Adam learning rate, generator", min=1e-9, max=1.0)
    lr_d: float = param(1e-05, "Adam learning rate, discriminator", min=1e-9, max=1.0)
    beta1: float = param(0.5, "Adam beta_1, both optimisers (DCGAN's value)", min=0.0, max=0.999)
    batch_size: int = param(32, "images per step", min=1, max=4096)
    epochs: int = param(
        20000, 'thesis: 20,000 "epochs"; one epoch = steps_per_epoch steps (see 03_train_gan)', min=1
    )
    steps_per_epoch: int = param(
        0, "0 = one full pass over the training images (N // batch_size steps)", min=0
    )
    precision: str = param(
        "auto",
        (
            "auto: float16 on a tensor-core GPU, bfloat16 on a CPU that computes it natively and is "
            "faster with it, else float32 | float32 | mixed | mixed_bfloat16 | mixed_float16"
        ),
        choices=("auto", "float32", "mixed", "mixed_bfloat16", "mixed_float16"),
    )
    augment_policy: str = param(
        "", "DiffAugment policy: '' = none, or e.g. translation,cutout,brightness,contrast (exp4)"
    )
    r1_gamma: float = param(
        0.0,
        (
            "R1 gradient penalty on real images (gamma/2 E|grad D|^2 on D's logit): a smooth D on few"
            " images; 0 = off"
        ),
        min=0.0,
        max=1000.0,
    )
    d_spectral_norm: bool = param(
        False,
        ("spectral normalisation of D's convolutions and dense layer: bounds how sharply D fits few images"),
    )
    lecam_weight: float = param(
        0.0,
        (
            "LeCam regulariser on D's logits against EMA anchors (decay 0.99): stops D's outputs "
            "drifting apart; 0 = off"
        ),
        min=0.0,
        max=1000.0,
    )
    g_ema_decay: float = param(
        0.0,
        (
            "keep an exponential moving average of G's weights (e.g. 0.999) and generate with it in "
            "04-06 and the export; 0 = off"
        ),
        min=0.0,
        max=0.9999,
    )
    d_reconstruction_weight: float = param(
        1.0,
        (
            "fastgan: weight of D's self-supervised reconstruction loss (its decoders rebuild real "
            "images); 0 = off"
        ),
        min=0.0,
        max=100.0,
    )
    conditional: bool = param(
        False,
        (
            "true = G and D take the finding type (mass | calcification) 02 labels each image with: "
            "class embedding into G, projection D"
        ),
    )
    progressive_resolutions: list[int] = shared_param("progressive_resolutions")
    progressive_epochs: list[int] = param(
        [], "epochs of each progressive stage, one per resolution; they sum to epochs", min=1
    )
    progressive_fade_fraction: float = param(
        0.5,
        (
            "share of each later stage over which its new block fades in (ProGAN: equal fade and "
            "stabilisation); 0 = none"
        ),
        min=0.0,
        max=1.0,
    )
    checkpoint_every: int = param(500, "epochs between checkpoints (one is always written at the end)", min=1)
    sample_every: int = param(500, "epochs between fixed-noise sample grids", min=1)
    keep_last: int = param(3, "newest checkpoints kept (the newest is the resume point)", min=1)
    keep_epochs: list[int] = param(
        [16000, 20000],
        ("also keep every checkpoint in this [start, end] range ([] = none); thesis sampled 16,000-20,000"),
    )
    divergence_patience: int = param(3, "stop after this many all-black sample grids in a row", min=1)
    sample_grid: int = param(
        4, "the sample grid shows sample_grid x sample_grid fixed latents", min=1, max=16
    )
    backend: str = shared_param("backend")
    jit_compile: bool = param(
        False,
        (
            "tensorflow: compile the train step with XLA (measure first: see make bench); jax always "
            "compiles it, torch runs it eagerly"
        ),
    )
    data_parallel: bool = param(
        True,
        (
            "tensorflow with several GPUs (Kaggle's 2 x T4): train on all of them, batch_size the "
            "global batch (jax and torch train on one)"
        ),
    )
    time_budget_hours: float = param(
        0.0,
        (
            "stop training cleanly, with a checkpoint, before this many hours since the pipeline "
            "started; 0 = none (Kaggle kernels: 11)"
        ),
        min=0.0,
    )
    train_minutes: float = param(
        0.0,
        (
            "stop once the training steps have taken this many minutes in all, over every session "
            "(the checkpoints keep the sum): equal compute for comparisons (make bench-quality); 0 = "
            "epochs alone"
        ),
        min=0.0,
    )
    restart_training: bool = param(
        False, "true = delete this run's checkpoints, samples and losses, start from scratch"
    )

    def __post_init__(self) -> None:
        super().__post_init__()
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

    generate_count: int = param(
        500, "images generated from each chosen checkpoint", min=1, section="04_generate"
    )
    generate_epochs: list[int] = param([], "checkpoint epochs to generate from; [] = the newest", min=1)
    grid_count: int = param(
        8, "latents shown per epoch in the grid across epochs (thesis Table 4.2)", min=1, max=16
    )
    interpolation_steps: int = param(10, "images in the latent interpolation strip", min=2, max=32)
    curve_count: int = param(
        200, "images from every kept checkpoint for 05's metric-vs-epoch curves (0 = none)", min=0
    )
    backend: str = shared_param("backend")


@dataclass(frozen=True)
class EvaluationConfig(StageConfig):
    """Fields 05_metrics and 06_svm share: which generated set, and how features are computed."""

    evaluate_epoch: int = param(
        0,
        "the generated set (04) to evaluate, by checkpoint epoch; 0 = the newest",
        min=0,
        section="05_metrics and 06_svm: which generated set, feature networks",
    )
    allow_random_weights: bool = param(
        False,
        (
            "a network without pretrained weights here (InceptionV3, DINOv2, ResNet50 offline): false"
            " = left out with a warning; true = random weights, labelled everywhere"
        ),
    )
    feature_batch_size: int = param(
        32, "images per forward pass of the feature networks (05, 06)", min=1, max=1024
    )


@dataclass(frozen=True)
class MetricsConfig(EvaluationConfig):
    """05_metrics: FID/KID, PSNR/SSIM vs the nearest real image, memorisation, texture, losses, comparison."""

    notebook: ClassVar[str] = "05_metrics"

    inception_weights: str = param(
        "",
        (
            "FID InceptionV3 weights file (weights-inception-2015-12-05-6726825d.pth); '' = "
            "$TORCH_HOME hub cache or download"
        ),
        section="05_metrics",
    )
    feature_networks: list[str] = param(
        ["effnet_lite0", "inception", "dinov2"],
        (
            "every set-level metric in each, the first leading: ImageNet EfficientNet-Lite0 "
            "(fd_effnet_lite0; weights in its package, so on every machine), InceptionV3 (fid, kid), "
            "DINOv2 ViT-B/14 (fd_dinov2; Stein et al. 2023), any other name = feature_network_path"
        ),
    )
    frd: bool = param(
        True,
        (
            "Fréchet Radiomic Distance (frd; FRD v1, Konz et al. 2026): radiomic features, no "
            "weights, the real set first"
        ),
    )
    dinov2_weights: str = param(
        "",
        (
            "DINOv2 ViT-B/14 weights file (dinov2_vitb14_pretrain.pth; the model code from the hub "
            "cache); '' = $TORCH_HOME hub cache or download"
        ),
    )
    feature_network_path: str = param(
        "",
        (
            "a TorchScript feature network (e.g. RadImageNet ResNet50: ImageNet-normalised 224 px in,"
            " features out), named in feature_networks by its keys' suffix, e.g. [inception, dinov2, "
            "radimagenet]; '' = none"
        ),
    )
    kid_subsets: int = param(100, "KID: random subsets averaged (torchmetrics' default)", min=1)
    kid_subset_size: int = param(1000, "KID: images per subset, clipped to the smaller set", min=2)
    prdc_k: int = param(
        5,
        "k of the k-NN manifolds behind precision, recall, density and coverage (Naeem et al.: 5)",
        min=1,
        max=100,
    )
    bootstrap_repeats: int = param(
        200,
        (
            "resamples of the images behind every 95 % interval (FID, KID, PRDC); 0 = none; each "
            "costs one FID per comparison"
        ),
        min=0,
    )
    memorisation_quantile: float = param(
        0.05,
        "flag generated images nearer a training image than 5 % of held-out real images are",
        min=0.0,
        max=0.5,
    )
    loss_smoothing: int = param(50, "steps in the rolling mean of the loss curves", min=1)
    compare_runs: list[str] = param(
        ["exp1_deep", "exp2_stylegan", "exp3_baseline", "exp4_diffaug", "exp5_conditional"],
        "runs in the comparison table (thesis Table 4.1)",
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
        (
            "the SVM study in each, the first leading: effnet_lite0 (accuracy_effnet_lite0) and the "
            "thesis's ResNet50 (accuracy; left out without pretrained weights unless "
            "allow_random_weights)"
        ),
        section="06_svm",
    )
    resnet_weights: str = param(
        "", ("ResNet50 ImageNet weights file (resnet50-0676ba61.pth); '' = $TORCH_HOME hub cache or download")
    )
    non_tumour_root: str = param(
        "",
        ("non-tumour images from another source (thesis: RSNA); '' = the phantom's healthy_other_source"),
    )
    non_tumour_same_source_root: str = param(
        "",
        "non-tumour images from the tumours' own source (control); '' = the phantom's healthy set",
    )
    non_tumour_kaggle_dataset: str = param(
        "",
        (
            "Kaggle kernels only: the dataset (owner/slug) attached and located as non_tumour_root; "
            "kernels default to the thesis's RSNA-derived set"
        ),
    )
    svm_train_per_class: int = param(400, "thesis: 400 tumour + 400 non-tumour training images", min=2)
    svm_test_per_class: int = param(100, "thesis: 100 + 100 test images", min=1)
    svm_generated: int = param(100, "thesis: 100 generated tumours replace 100 real ones", min=0)
    svm_generated_class: str = param(
        "",
        "a conditional run's generated images of this class only (e.g. mass); '' = every class",
    )
    svm_repeats: int = param(10, "seeded draws of train/test sets (the thesis made one)", min=1)
    svm_c: float = param(1.0, "SVM regularisation C (linear kernel)", min=1e-6)

    def weights_path(self, network: str) -> str:
        """The weights-file parameter of a feature network ('' = its package, the hub cache or a download)."""
        return self.resnet_weights if network == "resnet50" else ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.svm_generated > self.svm_train_per_class:
            raise ParameterError(
                f"parameter 'svm_generated': {self.svm_generated} generated tumours cannot replace part of "
                f"svm_train_per_class = {self.svm_train_per_class} real ones",
                "svm_generated",
            )
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
