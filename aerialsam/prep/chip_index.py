"""The chip index ``chips.csv``: read it, check a folder's grid, merge and write it atomically.

The columns are documented in :mod:`aerialsam.prep.chips`, which writes the index; they stay stable
because masks, splits and datasets read them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from aerialsam.errors import InputError
from aerialsam.inputs import Column, read_table
from aerialsam.io import atomic_path

INDEX_FILE = "chips.csv"
CHIP_COLUMNS: tuple[str, ...] = (
    "chip_id", "path", "source", "aoi", "image_id", "row_off", "col_off", "size", "overlap",
    "pad_right", "pad_bottom", "crs", "minx", "miny", "maxx", "maxy")


INDEX_SCHEMA: tuple[Column, ...] = (
    *(Column(name) for name in ("chip_id", "path", "source", "aoi", "image_id")),
    Column("row_off", "int", minimum=0), Column("col_off", "int", minimum=0),
    Column("size", "int", minimum=1), Column("overlap", "int", minimum=0),
    Column("pad_right", "int", minimum=0), Column("pad_bottom", "int", minimum=0),
    Column("crs"), *(Column(name, "float") for name in ("minx", "miny", "maxx", "maxy")))
"""The type of every column of :data:`CHIP_COLUMNS`, as :func:`read_index` checks them."""


def read_index(path: str | Path) -> pd.DataFrame:
    """Read a ``chips.csv`` (see :mod:`aerialsam.prep.chips` for its columns).

    Every column is checked (:func:`aerialsam.inputs.read_table`): text that is UTF-8, whole
    non-negative offsets, sizes and padding, finite bounds, no empty value.

    Raises:
        InputError: missing or empty file, a missing column, or a bad value (its line and
            column).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "chip index not found (run `aerialsam chip` first)")
    return read_table(path, INDEX_SCHEMA, what="chip index")


def previous_index(out_dir: Path, size: int, overlap: int) -> pd.DataFrame:
    """A chip folder's existing index (empty if none); refuse to mix two grids in one folder.

    Raises:
        InputError: the folder holds chips of another size or overlap.
    """
    path = out_dir / INDEX_FILE
    if not path.exists():
        return pd.DataFrame(columns=list(CHIP_COLUMNS))
    index = read_index(path)
    grids = set(zip(index["size"], index["overlap"], strict=True)) - {(size, overlap)}
    if grids:
        found_size, found_overlap = sorted(grids)[0]
        raise InputError(out_dir, f"holds chips of size {found_size} overlap {found_overlap}, "
                                  f"not {size}/{overlap}; choose another folder")
    return index


def merge_index(previous: pd.DataFrame, rows: list[dict],
                rechipped: Iterable[str]) -> pd.DataFrame:
    """Earlier rows of sources not rechipped plus this run's rows, sorted by AOI, image, offsets."""
    kept = previous[~previous["source"].isin(set(rechipped))]
    frames = [f for f in (kept, pd.DataFrame(rows, columns=list(CHIP_COLUMNS))) if len(f)]
    index = pd.concat(frames) if frames else pd.DataFrame(columns=list(CHIP_COLUMNS))
    return index.sort_values(["aoi", "image_id", "row_off", "col_off"]).reset_index(drop=True)


def write_index(path: Path, index: pd.DataFrame) -> None:
    """Write a chip index atomically."""
    with atomic_path(path) as tmp:
        index.to_csv(tmp, index=False)
