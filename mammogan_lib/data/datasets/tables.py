"""Read label CSVs as text, check their columns, and name rows the way a spreadsheet does.

Column names are matched loosely (case, surrounding spaces, '_' versus ' '), so ``breast density`` (calc
CSVs) and ``breast_density`` (mass CSVs) are the same column. Every cell is read as a string with
surrounding whitespace (e.g. the newline that ends some CBIS-DDSM paths) stripped; empty cells are ''.

Bad values are collected (:class:`BadValues`) and raised together once a file has been read: one
:class:`BadLabelsError` lists every distinct bad value of every column, with how many rows hold it, the
first of those rows, and what the column accepts, so labels are fixed in one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from mammogan_lib.core.vocabulary import BadValueError

Normalised = TypeVar("Normalised")
ROWS_SHOWN = 5  # rows listed per bad value; the count says how many there are in all


@dataclass(frozen=True)
class Table:
    """A CSV read as text: ``rows`` keyed by the normalised column names of ``columns``."""

    path: Path
    source: str  # the file as reported in errors and problems (relative to the dataset root)
    rows: list[dict[str, str]]  # one dict per data row, keys: normalised column names

    def where(self, index: int, column: str | None = None) -> str:
        """'csv/x.csv row 5 column 'pathology'' for data row ``index`` (0-based)."""
        text = f"{self.source} row {spreadsheet_row(index)}"
        return f"{text} column {column!r}" if column else text


def spreadsheet_row(index: int) -> int:
    """Row number as a spreadsheet shows it: the header is row 1, the first data row is row 2."""
    return index + 2


def normalise_column(name: str) -> str:
    """'Breast_Density ' -> 'breast density'."""
    return " ".join(str(name).replace("_", " ").lower().split())


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` in POSIX form when inside it, else the absolute path."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def read_table(path: Path, root: Path, required: Sequence[str], separator: str = ",") -> Table:
    """Read ``path`` as text; raise if it is missing, unparsable, or lacks a ``required`` column.

    ``required`` holds normalised names (see :func:`normalise_column`). Extra columns are kept.
    """
    source = relative_name(path, root)
    if not path.is_file():
        raise FileNotFoundError(f"required CSV {source} not found (looked for {path})")
    try:
        # utf-8-sig: a byte-order mark (spreadsheets write one) must not become part of the first column name
        frame = pd.read_csv(path, sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError as error:
        raise ValueError(f"{source} is empty; expected a header row with columns {list(required)}") from error
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise ValueError(f"{source} could not be parsed as CSV: {error}") from error
    names: dict[str, str] = {}
    for original in frame.columns:
        names.setdefault(normalise_column(original), original)
    missing = [column for column in required if column not in names]
    if missing:
        raise ValueError(
            f"{source} has no column {missing[0]!r} (missing: {missing}); "
            f"columns found: {list(frame.columns)}"
        )
    columns = {name: frame[original].astype(str).str.strip().tolist() for name, original in names.items()}
    rows = [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return Table(path=path, source=source, rows=rows)


def find_in_folder(folder: Path, name: str) -> Path | None:
    """The file of ``folder`` named ``name`` ignoring case, or None."""
    if not folder.is_dir():
        return None
    matches = sorted(p for p in folder.iterdir() if p.name.lower() == name.lower() and p.is_file())
    return matches[0] if matches else None


class BadLabelsError(ValueError):
    """Every bad value of one or more label files, in one message (see :class:`BadValues`)."""


@dataclass
class BadValues:
    """The bad values met while reading label tables, raised together by :meth:`raise_if_any`.

    Values are grouped by file, column, value and problem; each group keeps the spreadsheet rows it was met
    in. Usage: ``pathology = bad.check(table, index, "pathology", normalise_pathology)`` returns the
    normalised value, or None after recording the :class:`BadValueError` the normaliser raised.
    """

    rows: dict[tuple[str, str, str, str], list[int]] = field(default_factory=dict)
    expected: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def check(
        self,
        table: Table,
        index: int,
        column: str,
        normalise: Callable[..., Normalised],
        *args: Any,
    ) -> Normalised | None:
        """``normalise(cell, where, *args)`` for the cell of data row ``index`` in ``column``."""
        try:
            return normalise(table.rows[index][column], table.where(index, column), *args)
        except BadValueError as error:
            self.add(table.source, column, spreadsheet_row(index), error)
            return None

    def add(self, source: str, column: str, row: int, error: BadValueError) -> None:
        """Record ``error`` as met in ``row`` of ``column`` of ``source``."""
        self.rows.setdefault((source, column, error.value, error.problem), []).append(row)
        expected = self.expected.setdefault((source, column), [])
        if error.expected not in expected:
            expected.append(error.expected)

    def __bool__(self) -> bool:
        return bool(self.rows)

    def message(self) -> str:
        """Per file: a line per distinct bad value (its column, how many rows and the first of them, the
        value and its problem), then what each column accepts."""
        sections = []
        for source in dict.fromkeys(key[0] for key in self.rows):
            groups = sorted(
                ((key, rows) for key, rows in self.rows.items() if key[0] == source),
                key=lambda item: (item[0][1], min(item[1])),
            )
            bad_rows = {row for _, rows in groups for row in rows}
            lines = [
                f"{source} has {_count(len(groups), 'bad value')} in {_count(len(bad_rows), 'row')}; "
                "nothing was loaded (fix them all, then run again):"
            ]
            for (_, column, value, problem), rows in groups:
                lines.append(f"- column {column!r}, {_rows_text(rows)}: {value!r} {problem}")
            for (expected_source, column), expected in self.expected.items():
                if expected_source == source:
                    lines += [f"column {column!r} accepts {text}" for text in expected]
            sections.append("\n".join(lines))
        return "\n".join(sections)

    def raise_if_any(self) -> None:
        """Raise one :class:`BadLabelsError` holding every recorded bad value (none recorded: return)."""
        if self:
            raise BadLabelsError(self.message())


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _rows_text(rows: list[int]) -> str:
    """'row 4', '7 rows (2, 3, 5, 8, 9, ...)'."""
    ordered = sorted(set(rows))
    if len(ordered) == 1:
        return f"row {ordered[0]}"
    shown = ", ".join(str(row) for row in ordered[:ROWS_SHOWN])
    more = ", ..." if len(ordered) > ROWS_SHOWN else ""
    return f"{_count(len(ordered), 'row')} ({shown}{more})"
