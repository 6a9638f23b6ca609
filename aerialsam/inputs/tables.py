"""CSV tables from users, read against a column schema: names, types, no hole where a number is.

:func:`read_table` decodes the file by the rule of :mod:`aerialsam.inputs.text`, parses it
with pandas, and checks each declared :class:`Column`: present in the header, a value in
every row (unless the column is ``nullable``), integers that are whole numbers, floats that
are finite numbers, values inside their bounds. The first problem is refused with one line
naming the file, the line and the column, e.g.
``chips/chips.csv, line 7: column 'row_off': 'abc' is not an integer``. Columns the schema does
not declare are kept as strings.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from aerialsam.errors import InputError
from aerialsam.inputs.text import read_text

_INT_LIMIT = 2 ** 53
"""Integers beyond this are not exact once read as numbers: a value that large is an error."""


@dataclass(frozen=True)
class Column:
    """One column of a table schema.

    Attributes:
        name: the header name (compared after stripping spaces).
        kind: ``str``, ``int`` (whole numbers, int64) or ``float`` (finite numbers, float64).
        required: the header must have the column; otherwise an absent column is left out.
        nullable: empty values are allowed (NaN for float, <NA> for int, ``""`` for str).
        minimum: the smallest value allowed (numbers only).
        maximum: the largest value allowed (numbers only).
    """

    name: str
    kind: Literal["str", "int", "float"] = "str"
    required: bool = True
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None


def read_table(path: str | Path, columns: Sequence[Column], what: str | None = None,
               allow_empty: bool = False) -> pd.DataFrame:
    """Read a CSV file and check it against ``columns``; return it typed, one row per record.

    Args:
        path: the CSV file.
        columns: the schema; undeclared columns are kept as strings.
        what: what the file should be (``chip index``), named when a column is missing.
        allow_empty: an empty file (no header) gives an empty table of the declared
            columns instead of an error.

    Raises:
        InputError: the file is missing, not text, not CSV, lacks a required column, or holds
            a value its column refuses (file, line, column and value).
    """
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        if allow_empty:
            return _empty(columns)
        raise InputError(path, f"is empty: no header (expected columns "
                               f"{[c.name for c in columns if c.required]})")
    header = _header(path, text)
    frame = _parse(path, text, header)
    _check_columns(path, header, columns, what)
    for column in columns:
        if column.name in frame.columns:
            frame[column.name] = _typed(path, text, frame[column.name], column)
    return frame


def row_line(path: str | Path, row: int) -> int:
    """The line (1-based, the header is line 1) where data row ``row`` (0-based) starts.

    Reads the file again: meant for error messages, after :func:`read_table` read it.
    """
    return _row_line(read_text(path), row)


def row_source(path: str | Path, row: int) -> str:
    """``"<path>, line <n>"`` for data row ``row`` of a CSV file, the source of an error."""
    return f"{path}, line {row_line(path, row)}"


def _empty(columns: Sequence[Column]) -> pd.DataFrame:
    dtypes = {"str": "str", "int": "int64", "float": "float64"}
    return pd.DataFrame({c.name: pd.Series([], dtype=dtypes[c.kind]) for c in columns})


def _header(path: Path, text: str) -> list[str]:
    """The header's names, stripped; refuse a name given twice (which column would count?)."""
    try:
        first = next((fields for fields in csv.reader(io.StringIO(text, newline="")) if fields),
                     [])
    except csv.Error as exc:
        raise InputError(path, f"not a readable CSV header ({exc})") from None
    names = [name.strip() for name in first]
    twice = sorted({name for name in names if name and names.count(name) > 1})
    if twice:
        raise InputError(path, f"column(s) {twice} appear more than once in the header")
    return names


def _parse(path: Path, text: str, header: list[str]) -> pd.DataFrame:
    """Every value as a string; a row with more fields than the header is refused."""
    try:
        frame = pd.read_csv(io.StringIO(text, newline=""), dtype=str, keep_default_na=False,
                            na_filter=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
        raise InputError(path, f"not a readable CSV ({_first_line(exc)})") from None
    if not isinstance(frame.index, pd.RangeIndex) or len(frame.columns) != len(header):
        # pandas takes a first column more than the header has for an index: refuse instead
        line, fields = _first_long_row(text, len(header))
        raise InputError(f"{path}, line {line}",
                         f"{fields} fields, but the header has {len(header)}")
    frame.columns = header
    return frame


def _check_columns(path: Path, header: list[str], columns: Sequence[Column],
                   what: str | None) -> None:
    missing = [c.name for c in columns if c.required and c.name not in header]
    if not missing:
        return
    names = f"column {missing[0]!r}" if len(missing) == 1 else f"columns {missing}"
    prefix = f"not a {what}: " if what else ""
    raise InputError(path, f"{prefix}missing {names} (found {header})")


def _typed(path: Path, text: str, values: pd.Series, column: Column) -> pd.Series:
    """A column's values in its kind; the first bad value is refused with its line."""
    stripped = values.str.strip()
    empty = (stripped == "").to_numpy()
    if empty.any() and not column.nullable:
        row = int(np.flatnonzero(empty)[0])
        raise InputError(_where(path, text, row),
                         f"column {column.name!r} is empty where {_kind_name(column)} belongs")
    if column.kind == "str":
        return values
    numbers = pd.to_numeric(stripped.where(~empty, "nan"), errors="coerce").to_numpy(float)
    bad = ~empty & ~np.isfinite(numbers)
    if column.kind == "int":
        with np.errstate(invalid="ignore"):
            bad |= ~empty & ((numbers != np.round(numbers)) | (np.abs(numbers) > _INT_LIMIT))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(_where(path, text, row), f"column {column.name!r}: "
                                                  f"{stripped.iloc[row]!r} is not "
                                                  f"{_kind_name(column)}")
    _check_bounds(path, text, numbers, empty, column)
    if column.kind == "float":
        return pd.Series(numbers, index=values.index, name=values.name)
    if empty.any():
        ints = pd.array(np.where(empty, 0, numbers).astype(np.int64), dtype="Int64")
        ints[empty] = pd.NA
        return pd.Series(ints, index=values.index, name=values.name)
    return pd.Series(numbers.astype(np.int64), index=values.index, name=values.name)


def _check_bounds(path: Path, text: str, numbers: np.ndarray, empty: np.ndarray,
                  column: Column) -> None:
    for bound, outside, relation in ((column.minimum, numbers < (column.minimum or 0), "least"),
                                     (column.maximum, numbers > (column.maximum or 0), "most")):
        if bound is None:
            continue
        outside = outside & ~empty
        if outside.any():
            row = int(np.flatnonzero(outside)[0])
            shown = _number(numbers[row])
            raise InputError(_where(path, text, row), f"column {column.name!r} is {shown}, "
                                                      f"must be at {relation} {_number(bound)}")


def _number(value: float) -> str:
    return str(int(value)) if math.isfinite(value) and value == int(value) else str(value)


def _kind_name(column: Column) -> str:
    return {"str": "a value", "int": "an integer", "float": "a finite number"}[column.kind]


def _where(path: Path, text: str, row: int) -> str:
    return f"{path}, line {_row_line(text, row)}"


def _records(text: str) -> list[tuple[int, int]]:
    """(start line, field count) of each non-blank record after the header, as pandas sees."""
    reader = csv.reader(io.StringIO(text, newline=""))
    records, end = [], 0
    try:
        for fields in reader:
            start, end = end + 1, reader.line_num
            if fields:
                records.append((start, len(fields)))
    except csv.Error:
        pass  # a line number is all that is wanted here; pandas reported the parse itself
    return records[1:]


def _row_line(text: str, row: int) -> int:
    records = _records(text)
    return records[row][0] if 0 <= row < len(records) else row + 2


def _first_long_row(text: str, width: int) -> tuple[int, int]:
    for line, fields in _records(text):
        if fields > width:
            return line, fields
    return 2, width + 1


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
