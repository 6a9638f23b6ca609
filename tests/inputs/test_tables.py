"""CSV tables against a column schema: names, integers, finite floats, bounds, the bad line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aerialsam.errors import InputError
from aerialsam.inputs import Column, read_table, row_line

SCHEMA = [Column("id"), Column("n", "int", minimum=0), Column("x", "float", nullable=True),
          Column("opt", "int", required=False)]


def table(tmp_path: Path, text: str):  # noqa: ANN201
    path = tmp_path / "t.csv"
    path.write_text(text)
    return read_table(path, SCHEMA, what="test table")


def test_types_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    got = table(tmp_path, 'id,n,x,extra\n"a\nb",3,1.5,z\n\nc, 4.0 ,,y\n')
    assert got["id"].tolist() == ["a\nb", "c"] and got["n"].dtype == np.int64
    assert got["n"].tolist() == [3, 4] and np.isnan(got["x"].iloc[1])
    assert got["extra"].tolist() == ["z", "y"] and "opt" not in got
    assert row_line(tmp_path / "t.csv", 1) == 5  # after a two-line record and a blank line


@pytest.mark.parametrize(("text", "message"), [
    ("", "is empty: no header"),
    ("id,x\n1,2\n", "not a test table: missing column 'n'"),
    ("id,n,x\na,nan,1\n", "line 2: column 'n': 'nan' is not an integer"),
    ("id,n,x\na,1,2\nb,,3\n", "line 3: column 'n' is empty where an integer belongs"),
    ("id,n,x\na,2.5,1\n", "line 2: column 'n': '2.5' is not an integer"),
    ("id,n,x\na,99999999999999999999,1\n", "'99999999999999999999' is not an integer"),
    ("id,n,x\na,-1,1\n", "line 2: column 'n' is -1, must be at least 0"),
    ("id,n,x\na,1,inf\n", "line 2: column 'x': 'inf' is not a finite number"),
    ("id,n,x\n,1,1\n", "line 2: column 'id' is empty"),
    ("id,n,x\na,1,1,surplus\n", "line 2: 4 fields, but the header has 3"),
    ("id,n,n\na,1,1\n", "column(s) ['n'] appear more than once"),
    ('id,n,x\n"a,1,1\n', "not a readable CSV"),
    ("id,n,x,opt\na,1,1,x\n", "line 2: column 'opt': 'x' is not an integer"),
])
def test_bad_tables_name_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError) as caught:
        table(tmp_path, text)
    assert str(tmp_path / "t.csv") in str(caught.value) and message in str(caught.value)


def test_empty_file_may_be_an_empty_table(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("")
    got = read_table(path, SCHEMA, allow_empty=True)
    assert got.empty and got["n"].dtype == np.int64
