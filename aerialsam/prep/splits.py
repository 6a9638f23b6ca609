"""Train / val / test splits by source tile, never by chip: seeded, per AOI, optionally by block.

Neighbouring chips of one tile overlap and share buildings, so splitting chips would leak
test pixels into training. Every chip of a tile therefore goes to the split of its tile.
Adjacent tiles also share buildings cut by their common edge; with ``block_tiles`` the tiles
are first grouped into square spatial blocks (``block_tiles`` x ``block_tiles`` tiles) and
whole blocks are assigned, so neighbouring tiles do not straddle splits.

Each AOI is split on its own (default 70 / 15 / 15 % of its tiles), from a random order
seeded by ``(seed, AOI)``: adding an AOI does not change the splits of the others.

``splits.csv`` columns: ``aoi``, ``image_id``, ``source`` (the source raster), ``split``
(``train``, ``val`` or ``test``), ``block`` (the tile's spatial block, ``<AOI>:b<col>_<row>``,
or its own image id when splitting tile by tile).
"""

from __future__ import annotations

import logging
import math
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aerialsam.errors import InputError
from aerialsam.inputs import Column, read_table, row_source
from aerialsam.io import atomic_path

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.70, 0.15, 0.15)
SPLIT_COLUMNS: tuple[str, ...] = ("aoi", "image_id", "source", "split", "block")


def split_counts(n: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> tuple[int, ...]:
    """Tiles per split for ``n`` tiles, by largest remainders.

    Each split of non-zero fraction gets at least one tile when there are enough tiles.

    Raises:
        InputError: fractions that are negative, not three, or do not sum to 1.
    """
    check_fractions(fractions)
    raw = [n * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    for i in sorted(range(3), key=lambda i: counts[i] - raw[i])[: n - sum(counts)]:
        counts[i] += 1
    wanted = [i for i, f in enumerate(fractions) if f > 0]
    if n >= len(wanted):
        for i in wanted:
            if counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] = 1
    return tuple(counts)


def check_fractions(fractions: Sequence[float]) -> None:
    """Refuse split fractions that are not three non-negative numbers summing to 1.

    Raises:
        InputError: naming ``fractions``.
    """
    if len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0,
                                                                     abs_tol=1e-6):
        raise InputError("fractions", f"need three non-negative train/val/test fractions "
                                      f"summing to 1, got {tuple(fractions)}")


def tiles_from_index(index: pd.DataFrame) -> pd.DataFrame:
    """One row per source tile of a chip index, with the tile's bounds (union of its chips)."""
    grouped = index.groupby(["aoi", "image_id", "source"], sort=True)
    return grouped.agg(minx=("minx", "min"), miny=("miny", "min"), maxx=("maxx", "max"),
                       maxy=("maxy", "max")).reset_index()


def spatial_blocks(tiles: pd.DataFrame, block_tiles: int) -> pd.Series:
    """The block id of each tile: square blocks of ``block_tiles`` median tile widths, per AOI.

    Args:
        tiles: one row per tile with ``aoi`` and bounds ``minx, miny, maxx, maxy``.
        block_tiles: block edge in tiles (2 groups tiles 2 x 2).

    Raises:
        InputError: ``block_tiles`` below 1.
    """
    if block_tiles < 1:
        raise InputError("block_tiles", f"must be at least 1, got {block_tiles}")
    blocks = pd.Series("", index=tiles.index, dtype=object)
    for aoi, group in tiles.groupby("aoi"):
        width = block_tiles * float((group["maxx"] - group["minx"]).median())
        height = block_tiles * float((group["maxy"] - group["miny"]).median())
        centre_x = (group["minx"] + group["maxx"]) / 2
        centre_y = (group["miny"] + group["maxy"]) / 2
        cols = np.floor((centre_x - group["minx"].min()) / width).astype(int)
        rows = np.floor((group["maxy"].max() - centre_y) / height).astype(int)
        blocks[group.index] = [f"{aoi}:b{c}_{r}" for c, r in zip(cols, rows, strict=True)]
    return blocks


def assign_splits(tiles: pd.DataFrame, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                  seed: int = 0, block_tiles: int | None = None) -> pd.DataFrame:
    """Assign every tile to train, val or test, per AOI, by tile or by spatial block.

    Groups (tiles, or blocks of tiles) are visited in a random order seeded by
    ``(seed, AOI)``; each goes to the split furthest below its target tile count
    (:func:`split_counts`), so a group is never divided.

    Args:
        tiles: one row per tile with ``aoi`` and ``image_id`` (and bounds for blocks).
        fractions: train, val, test fractions.
        seed: the seed of the random order.
        block_tiles: group tiles into blocks of this many tiles per side first.

    Returns:
        ``tiles`` with ``split`` and ``block`` columns, sorted by AOI and image id.

    Raises:
        InputError: bad fractions, or the same tile listed twice.
    """
    check_fractions(fractions)
    if tiles.duplicated(["aoi", "image_id"]).any():
        raise InputError("tiles", "a tile is listed twice; one row per source tile is needed")
    tiles = tiles.sort_values(["aoi", "image_id"]).reset_index(drop=True)
    tiles["block"] = spatial_blocks(tiles, block_tiles) if block_tiles else tiles["image_id"]
    tiles["split"] = ""
    for aoi, group in tiles.groupby("aoi"):
        rng = np.random.default_rng([seed, zlib.crc32(str(aoi).encode())])
        targets = np.array(split_counts(len(group), fractions))
        assigned = np.zeros(3, dtype=int)
        sizes = group.groupby("block", sort=True).size()
        order = rng.permutation(sizes.index.to_numpy())
        for left, block in zip(range(len(order), 0, -1), order, strict=True):
            choice = _next_split(targets, assigned, left)
            assigned[choice] += sizes[block]
            tiles.loc[group.index[group["block"] == block], "split"] = SPLITS[choice]
        log.info("splits %s: %s tiles in %d groups", aoi,
                 dict(zip(SPLITS, assigned.tolist(), strict=True)), len(sizes))
    return tiles


def _next_split(targets: np.ndarray, assigned: np.ndarray, groups_left: int) -> int:
    """The split the next group goes to: the one furthest below its target.

    Splits still empty take the last groups, though, so every split gets one when there are
    enough groups (with big blocks the greedy choice would leave the test split empty).
    """
    empty = [i for i in np.argsort(-targets, kind="stable") if targets[i] > 0 and not assigned[i]]
    if empty and groups_left <= len(empty):
        return int(empty[0])
    return int(np.argmax(targets - assigned))


def make_splits(index: pd.DataFrame, out_path: str | Path,
                fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
                block_tiles: int | None = None) -> pd.DataFrame:
    """Split the tiles of a chip index and write ``splits.csv`` atomically; return the table."""
    if index.empty:
        raise InputError(out_path, "the chip index is empty: nothing to split")
    splits = assign_splits(tiles_from_index(index), fractions, seed, block_tiles)
    splits = splits[list(SPLIT_COLUMNS)]
    with atomic_path(out_path) as tmp:
        splits.to_csv(tmp, index=False)
    return splits


def read_splits(path: str | Path) -> pd.DataFrame:
    """Read a ``splits.csv``.

    Every value is text, none empty (:func:`aerialsam.inputs.read_table`).

    Raises:
        InputError: missing or empty file, missing columns, an empty value or an unknown
            split name (with its line).
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "splits file not found")
    splits = read_table(path, [Column(name) for name in SPLIT_COLUMNS], what="splits file")
    unknown = ~splits["split"].isin(SPLITS).to_numpy()
    if unknown.any():
        names = sorted(set(splits["split"][unknown]))
        raise InputError(row_source(path, int(np.flatnonzero(unknown)[0])),
                         f"unknown split name(s) {names}; expected {list(SPLITS)}")
    return splits


def chips_with_splits(index: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """The chip index with each chip's ``split`` (and ``block``): that of its source tile.

    Raises:
        InputError: a chip whose tile has no split.
    """
    merged = index.merge(splits[["aoi", "image_id", "split", "block"]],
                         on=["aoi", "image_id"], how="left", validate="many_to_one")
    orphans = merged["split"].isna()
    if orphans.any():
        first = merged.loc[orphans, "image_id"].iloc[0]
        raise InputError("splits", f"{int(orphans.sum())} chips have no split "
                                   f"(e.g. tile {first}); remake the splits")
    return merged
