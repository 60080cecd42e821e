"""``make params``: ``params/base.yaml`` and the notebooks' ``parameters`` cells, written from the stages'
config classes, the one hand-written source of every parameter.

A parameter is declared once, as a field of its stage's class in :mod:`mammogan_lib.core.config`: its
full-scale default, what it means (``base.yaml``'s comment) and its checks; the first field of a group names
the group (``section=``). From them this module writes

- ``params/base.yaml``: every parameter with its default and meaning, in the classes' order, once each;
- each notebook's ``parameters`` cell: its stage's fields, with ``params/base.yaml`` overridden by
  ``params/smoke.yaml`` (so a notebook run by hand is the smoke run), and the first clause of the meaning.

``python -m mammogan_lib.pipeline.parameters`` rewrites what is out of date; ``--check`` only says what is
(exit status 1), which ``tests/test_params.py`` runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mammogan_lib.core.config import CHECKOUT_ROOT, STAGE_CONFIGS, StageConfig

BASE_FILE = Path("params") / "base.yaml"
SMOKE_FILE = Path("params") / "smoke.yaml"
LINE_LENGTH = 110  # the notebooks are linted with the library's line length
COMMENT_COLUMN = 29  # the column base.yaml's comments start at, where the key and value leave room
SECTION_WIDTH = 100
BASE_HEADER = """\
# Every parameter of the pipeline, with the study's full-scale values (thesis-faithful where the thesis
# says). Experiment files and smoke.yaml override only what they change; papermill merges the files in
# order, shallowly. A key that no notebook declares, or a value of the wrong type or range, stops the run
# before anything executes (mammogan_lib/pipeline/__init__.py). The notebooks' own defaults are base + smoke.
#
# Written by `make params` from the stages' config classes (mammogan_lib/core/config.py: each field's default,
# meaning and section): change a parameter there, then run `make params`.
"""


def declared_fields() -> list[dataclasses.Field]:
    """Every parameter's field, in the stages' order, each once (the first class declaring it)."""
    fields: dict[str, dataclasses.Field] = {}
    for cls in STAGE_CONFIGS:
        for field in dataclasses.fields(cls):
            fields.setdefault(field.name, field)
    return list(fields.values())


def default_of(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


def _float_text(value: float) -> str:
    # positional, because YAML 1.1 (PyYAML) reads 1e-05 as a string
    return np.format_float_positional(value, trim="0")


def yaml_value(value: Any) -> str:
    """``value`` as base.yaml writes it: flow lists, plain strings where YAML reads them back unchanged."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, list):
        return "[" + ", ".join(yaml_value(item) for item in value) + "]"
    if isinstance(value, str):
        plain = value and not any(mark in value for mark in ":#,[]{}'\"") and yaml.safe_load(value) == value
        return value if plain else json.dumps(value, ensure_ascii=False)
    return str(value)


def python_value(value: Any) -> str:
    """``value`` as a literal of a notebook's parameters cell (as ruff formats it)."""
    if isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        return _float_text(value)
    if isinstance(value, list):
        return "[" + ", ".join(python_value(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def section_line(title: str) -> str:
    head = f"# --- {title} "
    return head + "-" * max(3, SECTION_WIDTH - len(head))


def base_yaml_text() -> str:
    """``params/base.yaml`` as the config classes declare it."""
    lines = [BASE_HEADER.rstrip("\n")]
    for field in declared_fields():
        section = field.metadata.get("section")
        if section:
            lines += ["", section_line(section)]
        setting = f"{field.name}: {yaml_value(default_of(field))}"
        gap = " " * max(COMMENT_COLUMN - len(setting), 2)
        lines.append(f"{setting}{gap}# {field.metadata['doc']}")
    return "\n".join(lines) + "\n"


def clause_ends(text: str) -> list[int]:
    """Where a clause of ``text`` may end: before '; ', ', ', ': ' or ' (' outside parentheses."""
    ends, depth = [], 0
    for index, char in enumerate(text):
        if char == "(":
            if depth == 0 and index > 0 and text[index - 1] == " ":
                ends.append(index - 1)
            depth += 1
        elif char == ")":
            depth = max(depth - 1, 0)
        elif depth == 0 and text.startswith(("; ", ", ", ": "), index):
            ends.append(index)
    return ends


def short_meaning(meaning: str, choices: Sequence[Any] | None, room: int) -> str:
    """What a notebook's parameters cell says of a parameter in ``room`` characters: its whole meaning
    where it fits, else its choices, else its longest leading clause, else its words cut with '…'."""
    if len(meaning) <= room:
        return meaning
    listed = " | ".join(str(choice) for choice in choices or ())
    if listed and len(listed) <= room:
        return listed
    fitting = [end for end in clause_ends(meaning) if end <= room]
    if fitting:
        return meaning[: fitting[-1]]
    cut = meaning.rfind(" ", 0, room - 1)
    return meaning[:cut] + "…" if cut > 0 else ""


def without_equals(text: str) -> str:
    """``text`` with no '=': papermill drops a parameters line holding two (its comment's included)."""
    return text.replace(">=", "≥").replace("<=", "≤").replace(" = ", ": ").replace("=", " ")


def parameters_cell_text(stage: type[StageConfig], values: Mapping[str, Any]) -> str:
    """A notebook's ``parameters`` cell: its stage's fields with ``values``, each with its meaning."""
    declared = {field.name: field for field in declared_fields()}
    lines = []
    for field in dataclasses.fields(stage):
        setting = f"{field.name} = {python_value(values[field.name])}"
        metadata = declared[field.name].metadata
        # a word's choices say more than a clause of their explanation; numbers' choices do not
        choices = metadata.get("choices") if isinstance(values[field.name], str) else None
        meaning = short_meaning(without_equals(metadata["doc"]), choices, LINE_LENGTH - len(setting) - 4)
        lines.append(f"{setting}  # {meaning}" if meaning else setting)
    return "\n".join(lines)


def notebook_path(stage: type[StageConfig], root: Path) -> Path:
    return root / "notebooks" / f"{stage.notebook}.ipynb"


def _read_notebook(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _notebook_text(notebook: Mapping[str, Any]) -> str:
    # the layout Jupyter and papermill write: one-space indent, UTF-8 kept
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def _parameters_cell(notebook: Mapping[str, Any], path: Path) -> dict[str, Any]:
    cells = [c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
    return cells[0]


def expected_files(root: Path = CHECKOUT_ROOT) -> dict[Path, str]:
    """Every file ``make params`` writes, with the text it should hold."""
    smoke = yaml.safe_load((root / SMOKE_FILE).read_text()) or {}
    defaults = {field.name: default_of(field) for field in declared_fields()}
    values = {**defaults, **smoke}
    expected = {root / BASE_FILE: base_yaml_text()}
    for stage in STAGE_CONFIGS:
        path = notebook_path(stage, root)
        notebook = _read_notebook(path)
        text = parameters_cell_text(stage, values)
        _parameters_cell(notebook, path)["source"] = text.splitlines(keepends=True)
        expected[path] = _notebook_text(notebook)
    return expected


def stale_files(root: Path = CHECKOUT_ROOT) -> list[Path]:
    """The files ``make params`` would change."""
    return [path for path, text in expected_files(root).items() if path.read_text() != text]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mammogan_lib.pipeline.parameters", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = stale_files()
    if args.check:
        for path in stale:
            print(f"{path.relative_to(CHECKOUT_ROOT)} is out of date: run make params")
        return 1 if stale else 0
    for path, text in expected_files().items():
        if path in stale:
            path.write_text(text)
            print(f"wrote {path.relative_to(CHECKOUT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
