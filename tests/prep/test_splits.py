"""Leak-free splits: by tile (never by chip), seeded, per AOI, optionally by spatial block."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aerialsam.errors import InputError
from aerialsam.prep import splits

TILE = 650 * 2.7e-6


def chip_index(tiles_per_aoi: dict[str, int], columns: int = 8) -> pd.DataFrame:
    """A chip index of abutting 650 px tiles on a grid (like the demo AOIs), 4 chips per tile."""
    rows = []
    for aoi, count in tiles_per_aoi.items():
        for n in range(count):
            r, c = divmod(n, columns)
            x0, y1 = -115.0 + c * TILE, 36.0 - r * TILE
            for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
                half = TILE / 2
                rows.append({"chip_id": f"{aoi}_img{n + 1}_{dr}{dc}", "aoi": aoi,
                             "image_id": f"{aoi}_img{n + 1}", "source": f"/raw/{aoi}/{n + 1}.tif",
                             "minx": x0 + dc * half, "maxx": x0 + (dc + 1) * half,
                             "miny": y1 - (dr + 1) * half, "maxy": y1 - dr * half})
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("n", "expected"), [(100, (70, 15, 15)), (10, (7, 2, 1)),
                                             (3, (1, 1, 1)), (1, (1, 0, 0)), (0, (0, 0, 0)),
                                             (20, (14, 3, 3))])
def test_split_counts(n: int, expected: tuple[int, int, int]) -> None:
    assert splits.split_counts(n) == expected


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.8, 0.15, 0.15), (1.2, -0.1, -0.1)])
def test_bad_fractions_are_refused(fractions: tuple[float, ...]) -> None:
    with pytest.raises(InputError, match="fractions"):
        splits.split_counts(10, fractions)


def test_no_tile_in_two_splits_and_chips_follow_their_tile(tmp_path: Path) -> None:
    index = chip_index({"AOI_2_Vegas": 40, "AOI_3_Paris": 20})
    table = splits.make_splits(index, tmp_path / "splits.csv", seed=3)
    assert list(table.columns) == list(splits.SPLIT_COLUMNS)
    assert not table.duplicated(["aoi", "image_id"]).any() and len(table) == 60
    chips = splits.chips_with_splits(index, splits.read_splits(tmp_path / "splits.csv"))
    assert len(chips) == len(index)
    assert (chips.groupby("image_id")["split"].nunique() == 1).all()
    counts = table.groupby(["aoi", "split"]).size().to_dict()
    assert counts == {("AOI_2_Vegas", "train"): 28, ("AOI_2_Vegas", "val"): 6,
                      ("AOI_2_Vegas", "test"): 6, ("AOI_3_Paris", "train"): 14,
                      ("AOI_3_Paris", "val"): 3, ("AOI_3_Paris", "test"): 3}


def test_splits_are_seeded_and_per_aoi() -> None:
    tiles = splits.tiles_from_index(chip_index({"AOI_2_Vegas": 30, "AOI_5_Khartoum": 30}))
    first = splits.assign_splits(tiles, seed=1)
    assert first.equals(splits.assign_splits(tiles, seed=1))
    assert not first["split"].equals(splits.assign_splits(tiles, seed=2)["split"])
    vegas_only = splits.assign_splits(tiles[tiles["aoi"] == "AOI_2_Vegas"], seed=1)
    np.testing.assert_array_equal(vegas_only["split"],
                                  first.loc[first["aoi"] == "AOI_2_Vegas", "split"])


def test_blocks_group_neighbouring_tiles_and_never_straddle_splits() -> None:
    tiles = splits.tiles_from_index(chip_index({"AOI_2_Vegas": 64}))  # an 8 x 8 tile grid
    table = splits.assign_splits(tiles, seed=0, block_tiles=2)
    assert table["block"].nunique() == 16
    assert (table.groupby("block").size() == 4).all()
    assert (table.groupby("block")["split"].nunique() == 1).all()
    numbers = table["image_id"].str.extract(r"img(\d+)")[0].astype(int) - 1
    rows, cols = numbers // 8, numbers % 8
    per_cell = table.groupby([rows // 2, cols // 2])["block"]
    assert (per_cell.nunique() == 1).all() and per_cell.first().nunique() == 16  # 2 x 2 groups
    assert table.groupby("split").size().to_dict() == {"test": 8, "train": 44, "val": 12}


def test_tile_listed_twice_and_chips_without_split_are_refused() -> None:
    tiles = splits.tiles_from_index(chip_index({"AOI_2_Vegas": 5}))
    with pytest.raises(InputError, match="listed twice"):
        splits.assign_splits(pd.concat([tiles, tiles.iloc[:1]]))
    table = splits.assign_splits(tiles.iloc[:4])
    with pytest.raises(InputError, match="1 chips|4 chips"):
        splits.chips_with_splits(chip_index({"AOI_2_Vegas": 5}), table)


def test_read_splits_rejects_unknown_split(tmp_path: Path) -> None:
    path = tmp_path / "splits.csv"
    path.write_text("aoi,image_id,source,split,block\nA,A_img1,x.tif,holdout,A_img1\n")
    with pytest.raises(InputError, match="holdout"):
        splits.read_splits(path)


@pytest.mark.parametrize("seed", range(5))
def test_every_split_gets_a_block_when_there_are_enough(seed: int) -> None:
    # the demo profile: 10 tiles per AOI in 2 x 2 blocks make 4 blocks (one of 4 tiles):
    # filling the biggest deficit first would leave the test split without any block
    tiles = splits.tiles_from_index(chip_index({"AOI_2_Vegas": 10, "AOI_3_Paris": 10}))
    table = splits.assign_splits(tiles, seed=seed, block_tiles=2)
    for _, group in table.groupby("aoi"):
        assert group["block"].nunique() == 4
        assert set(group["split"]) == {"train", "val", "test"}


@pytest.mark.parametrize(("body", "message"), [
    ("AOI_2_Vegas,AOI_2_Vegas_img1,/a.tif,train,b\nAOI_2_Vegas,AOI_2_Vegas_img2,/b.tif,hold,b\n",
     "splits.csv, line 3: unknown split name(s) ['hold']"),
    ("AOI_2_Vegas,,/a.tif,train,b\n", "splits.csv, line 2: column 'image_id' is empty"),
])
def test_read_splits_names_the_line(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "splits.csv"
    path.write_text("aoi,image_id,source,split,block\n" + body)
    with pytest.raises(InputError) as caught:
        splits.read_splits(path)
    assert message in str(caught.value)
    path.write_bytes(b"\xff\xd8\xff\xe0 a jpeg")
    with pytest.raises(InputError, match="not UTF-8 text: byte 0xff at byte offset 0"):
        splits.read_splits(path)
