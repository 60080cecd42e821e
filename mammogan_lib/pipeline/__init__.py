"""Run the notebooks in order with papermill: ``python -m mammogan_lib.pipeline PARAMS.yaml ... [options]``.

1. Merge the YAML files in order, shallowly (as papermill's ``-f`` does), then ``--set key=value`` overrides.
2. Validate everything before executing anything: every key must be declared by some notebook's
   ``parameters`` cell (papermill's own view of the notebooks), and values must have the declared type and
   range (``config.py``). Errors name the key and the file that set it.
3. Execute each stage into ``runs/<exp_id>/notebooks/``, export it to HTML in ``runs/<exp_id>/reports/``,
   and mark it done with a fingerprint of its parameters, its notebook source and its upstream stages. A
   stage whose fingerprint is unchanged is skipped (``--force`` re-runs).
4. A stage that fails stops the run with :class:`mammogan_lib.core.failures.StageFailed`: the command prints
   ``[<stage>] failed: <what happened>``, the newest checkpoint, how to resume and where the traceback is,
   and exits with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mammogan_lib.core import config, failures, files, run_lock, terminal
from mammogan_lib.core.frameworks import BACKEND_VARIABLE
from mammogan_lib.core.run_paths import RunPaths
from mammogan_lib.pipeline import disk_space, provenance, report

STAGES: tuple[str, ...] = (
    "01_filter",
    "02_preprocess",
    "03_train_gan",
    "04_generate",
    "05_metrics",
    "06_svm",
)
# Where the stage notebooks live and which Jupyter kernel runs them: the checkout and the kernel `make setup`
# registers, unless the environment says otherwise (a Kaggle kernel runs unpacked copies on "python3").
NOTEBOOKS_DIR_VARIABLE = "MAMMOGAN_NOTEBOOKS_DIR"
KERNEL_VARIABLE = "MAMMOGAN_KERNEL"


def notebooks_dir() -> Path:
    return Path(os.environ.get(NOTEBOOKS_DIR_VARIABLE) or config.CHECKOUT_ROOT / "notebooks")


def notebook_path(stage: str) -> Path:
    return notebooks_dir() / f"{stage}.ipynb"


@dataclass(frozen=True)
class MergedParams:
    values: dict[str, Any]
    origins: dict[str, str]  # key -> the file (or '--set') that gave its final value


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML syntax error in one line: what is wrong, and where (line and column, counted from 1)."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    context, start = getattr(error, "context", None), getattr(error, "context_mark", None)
    opened = (
        f" ({context} from line {start.line + 1}, column {start.column + 1})" if context and start else ""
    )
    return f"{where}{problem}{opened}"


def load_params(files: Sequence[Path], overrides: Sequence[str] = ()) -> MergedParams:
    """Merge YAML files in order (shallow, later wins), then ``key=value`` overrides parsed as YAML. A
    missing file, a YAML syntax error (file, line, column) and a malformed override are each a
    :class:`~mammogan_lib.core.config.ParameterError`, all of them in one."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    errors: list[config.ParameterError] = []
    for path in files:
        path = Path(path)
        if not path.is_file():
            errors.append(config.ParameterError(f"parameter file {path} does not exist"))
            continue
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as error:
            errors.append(
                config.ParameterError(f"parameter file {path}: not valid YAML, {yaml_problem(error)}")
            )
            continue
        if not isinstance(loaded, dict):
            errors.append(config.ParameterError(f"parameter file {path}: expected a mapping of key: value"))
            continue
        values.update(loaded)
        origins.update(dict.fromkeys(loaded, str(path)))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            errors.append(config.ParameterError(f"--set {item!r}: expected key=value"))
            continue
        try:
            values[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError as error:
            errors.append(
                config.ParameterError(
                    f"--set {item!r}: the value is not valid YAML, {yaml_problem(error)}", key
                )
            )
            continue
        origins[key] = "--set"
    config.raise_all(errors)
    return MergedParams(values, origins)


def notebook_parameters(stage: str) -> dict[str, Any]:
    """The parameters a notebook declares, as papermill sees them: name -> literal default."""
    import papermill

    with _without_missing_cell_id_warnings():
        declared = papermill.inspect_notebook(str(notebook_path(stage)))
    return {name: yaml.safe_load(info["default"]) for name, info in declared.items()}


def check_params(merged: MergedParams) -> None:
    """Reject keys no notebook declares, and values of the wrong type or range (see config.py), for every
    stage (each stage's fingerprint depends on them all); one error lists every problem, each with the file
    that set it."""
    declared = set().union(*(notebook_parameters(stage) for stage in STAGES))
    errors = [
        config.ParameterError(
            f"unknown parameter {key!r} (set in {merged.origins.get(key, '?')}): no "
            f"notebook declares it; declared: {', '.join(sorted(declared))}",
            key,
        )
        for key in sorted(set(merged.values) - declared)
    ]
    for config_class in config.STAGE_CONFIGS:
        errors += config.value_errors(merged.values, config_class, merged.origins)
    if not errors:  # checks across fields (e.g. keep_epochs as a [start, end] pair) live in the configs
        for config_class in config.STAGE_CONFIGS:
            try:
                config_class(**stage_params(config_class.notebook, merged))
            except config.ParameterError as error:
                where = merged.origins.get(error.key, "the notebook's default") if error.key else "?"
                errors.append(config.ParameterError(f"{error} (set in {where})", error.key))
    config.raise_all(errors)


def stage_params(stage: str, merged: MergedParams) -> dict[str, Any]:
    """Parameters to inject into one notebook: its defaults overridden by the merged values."""
    defaults = notebook_parameters(stage)
    return {name: merged.values.get(name, default) for name, default in defaults.items()}


def _notebook_source_digest(stage: str) -> str:
    notebook = json.loads(notebook_path(stage).read_text())
    sources = ["".join(cell["source"]) for cell in notebook["cells"]]
    return hashlib.sha256("\n\x00".join(sources).encode()).hexdigest()


def stage_fingerprint(stage: str, params: Mapping[str, Any], upstream: Sequence[str]) -> str:
    payload = {"stage": stage, "params": params, "notebook": _notebook_source_digest(stage), "up": upstream}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def is_stage_current(run_dir: Path, stage: str, fingerprint: str) -> bool:
    """Whether the stage finished with this fingerprint; a stage that stopped partway (``partial``) never
    is, so the next run continues it."""
    marker = files.read_json_if_present(RunPaths(run_dir).done_marker(stage)) or {}
    return marker.get("fingerprint") == fingerprint and not marker.get("partial")


def recorded_partial(run_dir: Path, stage: str, fingerprint: str) -> dict[str, Any] | None:
    """How far the last run of the stage with this fingerprint got if it stopped partway, else None."""
    marker = files.read_json_if_present(RunPaths(run_dir).done_marker(stage)) or {}
    return marker.get("partial") if marker.get("fingerprint") == fingerprint else None


def upstream_link(fingerprint: str, partial: Mapping[str, Any] | None) -> str:
    """What the stages after a stage depend on: its fingerprint, plus how far it got when it stopped
    partway, so that they run again once it has gone further."""
    return f"{fingerprint} partial {json.dumps(partial, sort_keys=True)}" if partial else fingerprint


@contextlib.contextmanager
def _without_missing_cell_id_warnings() -> Iterator[None]:
    """nbformat warns that our notebooks' cells have no ids (an optional field of nbformat 4.5) each time
    it reads one: nothing a user can act on."""
    from nbformat.validator import MissingIDFieldWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingIDFieldWarning)
        yield


def export_html(notebook_path: Path, html_path: Path) -> Path:
    """Export an executed notebook to a standalone HTML file with its figures embedded."""
    import nbformat
    from nbconvert import HTMLExporter

    with _without_missing_cell_id_warnings():
        notebook = nbformat.read(notebook_path, as_version=4)
        body, _ = HTMLExporter(embed_images=True).from_notebook_node(notebook)
    return files.write_text(html_path, body)


def differing_from_defaults(stage: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters papermill injects into a stage: those whose value differs from the notebook's own
    default (the same run, and a short injected cell the reader can take in, under the defaults)."""
    missing = object()
    defaults = notebook_parameters(stage)
    return {key: value for key, value in params.items() if defaults.get(key, missing) != value}


def partial_notebook(output: Path) -> Path:
    """Where papermill writes a stage's notebook while it runs (``03_train_gan.running.ipynb``): the
    executed notebook's own name is given only to a whole file (:func:`publish_notebook`)."""
    return output.with_name(f"{output.stem}.running{output.suffix}")


def publish_notebook(partial: Path, output: Path) -> bool:
    """Rename the notebook papermill wrote to its final name if it is whole (valid JSON), else delete it
    (a disk that filled up mid-write leaves half a file); whether it was published."""
    try:
        json.loads(partial.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        partial.unlink(missing_ok=True)
        return False
    os.replace(partial, output)
    return True


def execute_stage(
    stage: str, params: Mapping[str, Any], run_dir: Path, cwd: Path, shown: terminal.Terminal | None = None
) -> Path:
    """Execute one notebook with papermill; return the executed notebook's path.

    The kernel writes its progress to the stage's progress file; with ``shown``, its standard error goes
    through :class:`terminal.KernelOutput` (start-up noise filtered out, everything in the stage's log).
    Any failure (an exception in a cell, a kernel that died, a kernel that would not start) raises
    :class:`failures.StageFailed` with a readable message (see :mod:`mammogan_lib.core.failures`). The
    executed notebook is whole or absent: papermill writes it under :func:`partial_notebook`'s name, renamed
    when it ends.
    """
    import papermill

    paths = RunPaths(run_dir)
    output = paths.executed_notebook(stage)
    partial = partial_notebook(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)  # a failure's message points at this file: never at an older run's
    partial.unlink(missing_ok=True)
    failures.ExitRecordingKernelManager.reset()
    # a stage on a Keras backend gets it from the parameter, whatever KERAS_BACKEND this process inherited
    backend = {BACKEND_VARIABLE: params["backend"]} if "backend" in params else {}
    kernel = terminal.stage_kernel(shown, stage, paths.stage_log(stage), paths.progress_file(stage), backend)
    try:
        with kernel, _without_missing_cell_id_warnings():
            papermill.execute_notebook(
                str(notebook_path(stage)),
                str(partial),
                parameters=differing_from_defaults(stage, params),
                cwd=str(cwd),
                progress_bar=False,
                kernel_name=os.environ.get(KERNEL_VARIABLE, "mammogan"),
                kernel_manager_class=terminal.StageKernelManager,
            )
    except Exception as error:
        publish_notebook(partial, output)
        manager = failures.ExitRecordingKernelManager
        space = disk_space.space_note(stage, params, run_dir) if failures.is_disk_full(error) else ""
        message = failures.describe_failure(
            stage, error, run_dir, output, cwd, manager.last_exit_status, manager.memory, space
        )
        raise failures.StageFailed(stage, message) from error
    if not publish_notebook(partial, output):
        raise failures.StageFailed(
            stage, f"[{stage}] failed: its executed notebook could not be written whole"
        )
    return output


def report_stage(
    stage: str, executed: Path, html: Path, params: Mapping[str, Any], run_dir: Path, cwd: Path
) -> None:
    """Export a finished stage's notebook to HTML; a failure (a full disk, ...) is the stage's, in a few
    lines: the stage is not marked done, and the same command runs it again."""
    try:
        export_html(executed, html)
    except Exception as error:
        lines = [f"[{stage}] failed: its HTML report could not be written: {type(error).__name__}: {error}"]
        if failures.is_disk_full(error):
            lines.append(f"no space left on device: {disk_space.space_note(stage, params, run_dir)}")
        lines.append(f"the executed notebook is whole: {failures.shown_path(executed, cwd)}")
        lines.append("fix the cause, then run the same command again: it runs this stage again")
        raise failures.StageFailed(stage, "\n".join(lines)) from error


def run_dir_of(merged: MergedParams, cwd: Path) -> Path:
    """The run folder the merged parameters name (``<runs_dir>/<exp_id>``)."""
    exp_id = merged.values.get("exp_id") or notebook_parameters(STAGES[0])["exp_id"]
    runs_dir = merged.values.get("runs_dir") or notebook_parameters(STAGES[0])["runs_dir"]
    return config.resolve_path(runs_dir, cwd) / exp_id


@dataclass
class RunRecord:
    """What one invocation did: stage -> 'ran' | 'skipped' | 'partial' | 'failed', and wall seconds."""

    outcome: dict[str, str] = field(default_factory=dict)
    wall_s: dict[str, float] = field(default_factory=dict)


def run_pipeline(
    merged: MergedParams,
    stages: Sequence[str] = STAGES,
    force: bool = False,
    cwd: Path | None = None,
    log: Callable[[str], None] | None = None,
    shown: terminal.Terminal | None = None,
    record: RunRecord | None = None,
) -> dict[str, str]:
    """Validate, then run (or skip) each stage in order. Returns stage -> 'ran' | 'skipped' | 'partial' (it
    stopped partway, e.g. training at its time budget; the next run continues it).

    ``shown`` (a :class:`terminal.Terminal`) shows each running stage's progress and filters its kernel's
    output; ``log`` receives the pipeline's own lines (default: the terminal's, else print). ``record``
    is filled as stages end, so that a caller still has it when a stage fails. The run folder is held for
    the whole run (:mod:`mammogan_lib.core.run_lock`): while another run writes there, this one is refused
    at once (:class:`~mammogan_lib.core.run_lock.RunFolderBusy`)."""
    check_params(merged)
    cwd = Path(cwd or Path.cwd())
    run_dir = run_dir_of(merged, cwd)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        files.write_text(run_dir / ".writable", "")
        (run_dir / ".writable").unlink()
    except OSError as error:
        where = merged.origins.get("runs_dir", "the notebooks' default")
        raise config.ParameterError(
            f"the run folder {run_dir} cannot be written ({error.strerror or error}): check runs_dir (set in "
            f"{where}) and exp_id, or the folder's permissions and free space",
            "runs_dir",
        ) from error
    with run_lock.hold(run_dir):
        return _run_stages(merged, stages, force, cwd, log, shown, record)


def _run_stages(
    merged: MergedParams,
    stages: Sequence[str],
    force: bool,
    cwd: Path,
    log: Callable[[str], None] | None,
    shown: terminal.Terminal | None,
    record: RunRecord | None,
) -> dict[str, str]:
    log = log or (shown.line if shown else print)
    run_dir = run_dir_of(merged, cwd)
    paths = RunPaths(run_dir)
    record = record if record is not None else RunRecord()
    outcome = record.outcome
    upstream: list[str] = []
    os.environ.setdefault(config.SESSION_STARTED_VARIABLE, str(time.time()))  # the time budget's start
    for stage in STAGES:
        params = stage_params(stage, merged)
        fingerprint = stage_fingerprint(stage, params, upstream)
        if stage not in stages:
            upstream.append(upstream_link(fingerprint, recorded_partial(run_dir, stage, fingerprint)))
            continue
        if not force and is_stage_current(run_dir, stage, fingerprint):
            log(f"[{stage}] unchanged since its last run: skipped (FORCE=1 re-runs)")
            outcome[stage] = "skipped"
            upstream.append(fingerprint)  # current, so it did not stop partway
            continue
        short = disk_space.shortfall(stage, params, run_dir)
        if short:
            outcome[stage], record.wall_s[stage] = "failed", 0.0
            raise failures.StageFailed(
                stage,
                f"[{stage}] not started: not enough free disk space: {short}\nfree some space (or lower "
                "keep_last, generate_count or the resolution), then run the same command again: it resumes",
            )
        log(f"[{stage}] running -> {paths.executed_notebook(stage)}")
        started = time.time()
        watching = (
            shown.watching(stage, STAGES.index(stage) + 1, len(STAGES), paths.progress_file(stage))
            if shown
            else contextlib.nullcontext()
        )
        try:
            with watching:
                executed = execute_stage(stage, params, run_dir, cwd, shown)
            report_stage(stage, executed, paths.report(stage), params, run_dir, cwd)
        except failures.StageFailed:
            outcome[stage], record.wall_s[stage] = "failed", time.time() - started
            raise
        record.wall_s[stage] = time.time() - started
        partial = (files.read_json_if_present(paths.stage_record(stage)) or {}).get("partial")
        done = {"fingerprint": fingerprint, "wall_s": round(time.time() - started, 1), "partial": partial}
        try:
            files.write_json(paths.done_marker(stage), done)
        except OSError as error:
            outcome[stage] = "failed"
            raise failures.StageFailed(
                stage,
                f"[{stage}] failed: it finished, but could not be marked done ({error}); run the same "
                "command again: it runs this stage again",
            ) from error
        upstream.append(upstream_link(fingerprint, partial))
        if partial:
            log(
                f"[{stage}] stopped partway in {time.time() - started:.0f} s: {partial['reason']} at epoch "
                f"{partial['epoch']:,} of {partial['epochs']:,}; the stages after it use its checkpoint, and "
                "running the same command again continues it"
            )
            outcome[stage] = "partial"
        else:
            log(f"[{stage}] done in {time.time() - started:.0f} s")
            outcome[stage] = "ran"
    if paths.stage_records.is_dir():
        try:
            provenance.merge_stage_records(run_dir)
            report.write_index(run_dir, STAGES)
        except Exception as error:
            raise failures.StageFailed(
                "index",
                f"[index] failed: the run's provenance and index.html could not be written: "
                f"{type(error).__name__}: {error}\nevery stage finished; run the same command again to "
                "write them (the stages are skipped)",
            ) from error
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mammogan_lib.pipeline", description=__doc__.split("\n")[0]
    )
    parser.add_argument("params", nargs="+", type=Path, help="YAML files, merged in order")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--stages", default="all", help="comma-separated stage names, or 'all'")
    parser.add_argument("--force", action="store_true", help="re-run stages even if unchanged")
    parser.add_argument("--check", action="store_true", help="only validate the parameters")
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=os.environ.get("VERBOSE", "") not in ("", "0"),
        help="show everything the kernels print, framework start-up noise included (also VERBOSE=1)",
    )
    args = parser.parse_args(argv)
    stages = STAGES if args.stages == "all" else tuple(s.strip() for s in args.stages.split(","))
    unknown_stages = sorted(set(stages) - set(STAGES))
    try:
        if unknown_stages:
            raise config.ParameterError(f"--stages: unknown {unknown_stages}; known: {list(STAGES)}")
        merged = load_params(args.params, args.overrides)
        if args.check:
            check_params(merged)
            print(f"parameters OK: {len(merged.values)} keys from {', '.join(map(str, args.params))}")
            return 0
    except config.ParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    shown, record = terminal.Terminal(verbose=args.verbose), RunRecord()
    failed = None
    try:
        run_pipeline(merged, stages, force=args.force, shown=shown, record=record)
    except (config.ParameterError, run_lock.RunFolderBusy) as error:  # refused before any stage ran
        print(f"error: {error}", file=sys.stderr)
        return 2
    except failures.StageFailed as error:
        sys.stdout.flush()
        print(error, file=sys.stderr)
        sys.stderr.flush()
        failed = error.stage
    try:
        show_summary(run_dir_of(merged, Path.cwd()), record, shown, failed)
    except Exception as error:  # the stages' outputs are whole; only the closing lines are lost
        print(
            f"[summary] failed: the closing summary could not be written: {type(error).__name__}: {error}; "
            f"the stages' outputs are in {run_dir_of(merged, Path.cwd())}",
            file=sys.stderr,
        )
        return 1
    return 1 if failed else 0


def show_summary(run_dir: Path, record: RunRecord, shown: terminal.Terminal, failed: str | None) -> None:
    """The closing summary, once a stage ran, was skipped or failed: what the run folder now holds."""
    if not record.outcome:
        return
    if failed:  # run_pipeline writes the page only at the end; the failed stage shows as not run
        report.write_index(run_dir, STAGES)
    overview = report.run_overview(run_dir, STAGES)
    for line in report.summary_lines(overview, record.outcome, record.wall_s, failed):
        shown.line(line)
