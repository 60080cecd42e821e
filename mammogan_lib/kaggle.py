"""Kaggle kernels for the experiments: ``python -m mammogan_lib.kaggle EXP [--user NAME] [--resume]``.

``build_bundle`` writes ``kaggle/<exp_id>/``, everything ``make kaggle-push`` uploads, built offline::

    library/   a Kaggle dataset: dataset-metadata.json, the mammogan_lib wheel, the stage notebooks and the
               params files (flat: Kaggle datasets keep files, not folders)
    kernel/    kernel-metadata.json (from the top-level kaggle-kernel-metadata.json template) and
               <exp_id>.ipynb: one notebook, prepared by papermill (``prepare_only``) with the experiment's
               parameters, that installs the wheel, restores a previous run, runs 01 -> 06 with Kaggle's paths

Kaggle's T4 machine is chosen because current PyTorch builds have no kernels for the P100 (sm_60). Internet
is on explicitly: the kernel installs what Kaggle's image lacks (torch-fidelity, pydicom, papermill) and
downloads the pretrained InceptionV3/ResNet50 weights, so FID is real FID there.

Surviving the session limit: with ``--resume`` the kernel lists its own output as a source, so a re-run sees
the previous version's ``runs/`` under ``/kaggle/input/<kernel-slug>/``; :func:`restore_previous_run` copies
it into ``/kaggle/working`` and the pipeline skips finished stages and resumes training from the newest
checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mammogan_lib import config, files, pipeline, provenance

TEMPLATE_FILE = "kaggle-kernel-metadata.json"
CBIS_DATASET = "awsaf49/cbis-ddsm-breast-cancer-image-dataset"
LIBRARY_SLUG = "mammogan-lib"
DEFAULT_USER = "your-kaggle-username"
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
)
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


def kernel_metadata(template: Mapping[str, Any], exp_id: str, user: str, resume: bool) -> dict[str, Any]:
    """Fill the template's ``{user}``, ``{exp_slug}``, ``{exp_id}`` and ``{library}`` placeholders."""
    values = {"user": user, "exp_slug": slug(exp_id), "exp_id": exp_id, "library": LIBRARY_SLUG}
    text = json.dumps(template)
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    metadata = json.loads(text)
    if resume:
        metadata["kernel_sources"] = [*metadata.get("kernel_sources", []), metadata["id"]]
    missing = [key for key in REQUIRED_METADATA if key not in metadata]
    if missing:
        raise ValueError(f"{TEMPLATE_FILE}: missing {missing}")
    return metadata


def library_metadata(user: str) -> dict[str, Any]:
    return {"title": LIBRARY_SLUG, "id": f"{user}/{LIBRARY_SLUG}", "licenses": [{"name": "MIT"}]}


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
        'input_root = "/kaggle/input"\n'
        'working_root = "/kaggle/working"\n'
        f'library_dataset = "{LIBRARY_SLUG}"\n'
        f'cbis_dataset = "{CBIS_DATASET.split("/")[1]}"\n'
        'stages = "all"  # or a comma-separated list of stages\n'
        "install_library = True  # False when the library is already installed (local checks)"
    )
    parameters.metadata["tags"] = ["parameters"]
    cells = [
        new_markdown_cell(
            f"# mammogan · `{exp_id}` on Kaggle\n\nRuns the six stage notebooks (01_filter … 06_svm) on the "
            "attached CBIS-DDSM dataset with this experiment's parameters. Executed notebooks, HTML reports "
            "and `index.html` land in `/kaggle/working/runs/<exp_id>/`. Re-running this kernel with its "
            "previous output attached resumes: finished stages are skipped and training continues from the "
            "newest checkpoint."
        ),
        parameters,
        new_code_cell(
            "import subprocess\nimport sys\nfrom pathlib import Path\n\n"
            "library_dir = Path(input_root) / library_dataset\n"
            "if install_library:\n"
            '    wheel = next(library_dir.glob("mammogan_lib-*.whl"))\n'
            "    pip = [sys.executable, '-m', 'pip', 'install', '--quiet']\n"
            "    subprocess.run([*pip, '--no-deps', str(wheel)], check=True)\n"
            f"    subprocess.run([*pip, *{list(KAGGLE_EXTRAS)!r}], check=True)"
        ),
        new_code_cell(
            "from mammogan_lib import kaggle\n\n"
            'project = kaggle.unpack_project(library_dir, Path(working_root) / "project")\n'
            "print(kaggle.restore_previous_run(Path(input_root), Path(working_root), exp_id))\n"
            "outcome = kaggle.run_on_kaggle(pipeline_params, project, Path(working_root), Path(input_root) / "
            "cbis_dataset, stages)\n"
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
    params_files: Sequence[Path], out_root: Path, user: str = DEFAULT_USER, resume: bool = False
) -> Path:
    """Validate an experiment's parameters and write ``<out_root>/<exp_id>/{library,kernel}/``."""
    merged = pipeline.load_params(params_files)
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
    metadata = kernel_metadata(template, exp_id, user, resume)
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


def restore_previous_run(input_root: Path, working_root: Path, exp_id: str) -> str:
    """Copy ``runs/<exp_id>`` and the array caches it points to (``data/cache``) from an attached previous
    kernel output into ``working_root``; say what happened."""
    target = Path(working_root) / "runs" / exp_id
    if target.exists():
        return f"{target} exists: continuing it"
    candidates = sorted(Path(input_root).glob(f"*/runs/{exp_id}"))
    if not candidates:
        return f"no previous output of {exp_id} attached: starting from scratch"
    previous_run = candidates[0]
    shutil.copytree(previous_run, target)
    previous_cache = previous_run.parent.parent / "data" / "cache"
    if previous_cache.is_dir():
        shutil.copytree(previous_cache, Path(working_root) / "data" / "cache", dirs_exist_ok=True)
    return f"restored {previous_run} -> {target}: finished stages are skipped, training resumes"


def run_on_kaggle(
    params: Mapping[str, Any], project: Path, working_root: Path, dataset: Path, stages: str = "all"
) -> dict[str, str]:
    """Run the pipeline from an unpacked project with Kaggle's paths (or local stand-ins for them):
    ``runs/`` and ``data/`` under ``working_root`` (Kaggle keeps it as the kernel's output)."""
    os.environ[pipeline.NOTEBOOKS_DIR_VARIABLE] = str(project / "notebooks")
    os.environ.setdefault(pipeline.KERNEL_VARIABLE, "python3")
    values = {
        **params,
        "runs_dir": str(Path(working_root) / "runs"),
        "data_dir": str(Path(working_root) / "data"),
        "dataset_root": str(dataset),
    }
    merged = pipeline.MergedParams(values, dict.fromkeys(values, "the Kaggle kernel's parameters"))
    chosen = pipeline.STAGES if stages == "all" else tuple(s.strip() for s in stages.split(","))
    return pipeline.run_pipeline(merged, chosen, cwd=project)


def push_commands(bundle: Path, message: str) -> list[list[str]]:
    """The kaggle CLI calls that publish a bundle: a new library version (or the first), then the kernel."""
    library, kernel = str(Path(bundle) / "library"), str(Path(bundle) / "kernel")
    return [
        ["kaggle", "datasets", "version", "-p", library, "-m", message],
        ["kaggle", "datasets", "create", "-p", library],
        ["kaggle", "kernels", "push", "-p", kernel],
    ]


def push(bundle: Path) -> None:
    """Publish with the kaggle CLI (``pip install kaggle`` and a token in ``~/.kaggle/kaggle.json``)."""
    if shutil.which("kaggle") is None:
        raise RuntimeError(
            "the kaggle CLI is missing: pip install kaggle, and put your token in ~/.kaggle/kaggle.json"
        )
    version, create, push_kernel = push_commands(
        bundle, f"mammogan {provenance.git_state().get('commit', '')[:8]}"
    )
    if subprocess.run(version).returncode != 0:  # the dataset does not exist yet
        subprocess.run(create, check=True)
    subprocess.run(push_kernel, check=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mammogan_lib.kaggle", description=__doc__.split("\n")[0])
    parser.add_argument("exp", help="experiment: params/<EXP>.yaml on top of params/base.yaml")
    parser.add_argument("--user", default=DEFAULT_USER, help="Kaggle user name (owner of kernel and dataset)")
    parser.add_argument("--resume", action="store_true", help="attach the kernel's own previous output")
    parser.add_argument("--out", type=Path, default=config.CHECKOUT_ROOT / "kaggle")
    parser.add_argument("--push", action="store_true", help="then publish with the kaggle CLI")
    args = parser.parse_args(argv)
    files = [config.CHECKOUT_ROOT / "params" / "base.yaml"]
    if args.exp != "base":
        files.append(config.CHECKOUT_ROOT / "params" / f"{args.exp}.yaml")
    bundle = build_bundle(files, args.out, args.user, args.resume)
    print(f"built {bundle}")
    if args.user == DEFAULT_USER:
        print(f"note: the metadata name the placeholder user {DEFAULT_USER!r}; pass KAGGLE_USER=<you>")
    if args.push:
        if args.user == DEFAULT_USER:
            print("error: set KAGGLE_USER=<your Kaggle user name> to push", file=sys.stderr)
            return 2
        push(bundle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
