"""Read label CSVs as text, check their columns, and name rows the way a spreadsheet does.

Column names are matched loosely (case, surrounding spaces, '_' versus ' '), so ``breast density`` (calc
CSVs) and ``breast_density`` (mass CSVs) are the same column. Every cell is read as a string with
surrounding whitespace (e.g. the newline that ends some CBIS-DDSM paths) stripped; empty cells are ''.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


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
