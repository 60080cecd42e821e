"""The pipeline continues a stage that stopped partway (training at its time budget) on the next run, and
re-runs the stages after it; notebooks are replaced by a stand-in that writes what a stage writes."""

from __future__ import annotations

import pytest

from mammogan_lib import pipeline
from mammogan_lib.core import files
from mammogan_lib.core.run_paths import RunPaths
from tests.conftest import PROJECT_ROOT


@pytest.fixture
def stand_in_stages(monkeypatch):
    """Replace execution with a stand-in; ``partial[stage]`` is what that stage's record says next run."""
    partial: dict[str, dict | None] = {}
    executed: list[str] = []

    def execute(stage, params, run_dir, cwd, shown=None):
        executed.append(stage)
        record = {"stage": stage, "wall_s": 0.1, "partial": partial.pop(stage, None)}
        files.write_json(RunPaths(run_dir).stage_record(stage), record)
        return files.write_text(RunPaths(run_dir).executed_notebook(stage), "{}")

    monkeypatch.setattr(pipeline, "execute_stage", execute)
    monkeypatch.setattr(pipeline, "export_html", lambda notebook, html: files.write_text(html, "<html/>"))
    monkeypatch.setattr(pipeline.provenance, "merge_stage_records", lambda run_dir: {})
    monkeypatch.setattr(pipeline.report, "write_index", lambda run_dir, stages: None)
    return partial, executed


def test_a_stage_stopped_partway_runs_again_and_so_do_the_stages_after_it(tmp_path, stand_in_stages):
    partial, executed = stand_in_stages
    merged = pipeline.load_params(
        [PROJECT_ROOT / "params" / "base.yaml", PROJECT_ROOT / "params" / "tiny.yaml"],
        [f"runs_dir={tmp_path / 'runs'}", f"data_dir={tmp_path / 'data'}"],
    )
    stopped = {"reason": "time budget of 1 h reached", "epoch": 3, "epochs": 8, "checkpoint": "epoch_000003"}
    partial["03_train_gan"] = stopped
    log: list[str] = []
    first = pipeline.run_pipeline(merged, cwd=PROJECT_ROOT, log=log.append)
    assert first == {**dict.fromkeys(pipeline.STAGES, "ran"), "03_train_gan": "partial"}
    assert any("[03_train_gan] stopped partway" in line and "epoch 3 of 8" in line for line in log)
    run_dir = tmp_path / "runs" / merged.values["exp_id"]
    assert files.read_json(RunPaths(run_dir).done_marker("03_train_gan"))["partial"] == stopped

    executed.clear()
    second = pipeline.run_pipeline(merged, cwd=PROJECT_ROOT, log=log.append)  # 03 now reaches its end
    assert second == {"01_filter": "skipped", "02_preprocess": "skipped"} | dict.fromkeys(
        pipeline.STAGES[2:], "ran"
    )
    assert executed == list(pipeline.STAGES[2:])

    third = pipeline.run_pipeline(merged, cwd=PROJECT_ROOT, log=log.append)
    assert third == dict.fromkeys(pipeline.STAGES, "skipped")
