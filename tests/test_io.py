"""The one write mechanism: atomic paths, whole rasters, output errors that name the output."""

from __future__ import annotations

import errno
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from aerialsam import io
from aerialsam.errors import InputError
from aerialsam.io import OutputError

PROFILE = {"driver": "GTiff", "dtype": "uint8", "crs": "EPSG:32611",
           "transform": from_origin(500000, 4000000, 0.5, 0.5)}


def full_disk() -> OSError:
    """What a write to a full disk raises: an errno and no file name."""
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_inside_atomic_path_names_the_output_and_keeps_the_old_file(
        tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("the previous, complete version")
    with pytest.raises(OutputError) as caught, io.atomic_path(target) as tmp:
        tmp.write_text("half of it")
        raise full_disk()
    assert caught.value.source == str(target)
    assert caught.value.problem.startswith("cannot write: the disk is full (ENOSPC")
    assert "rerun" in caught.value.problem
    assert target.read_text() == "the previous, complete version"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_an_input_error_inside_atomic_path_passes_unchanged(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught, io.atomic_path(tmp_path / "out.csv"):
        (tmp_path / "missing-input.csv").read_text()
    assert caught.value.filename == str(tmp_path / "missing-input.csv")
    assert not list(tmp_path.iterdir())


def test_outputs_get_the_permissions_the_umask_allows(tmp_path: Path) -> None:
    # mkstemp makes its files private; a finished output is an ordinary file.
    path = io.write_file(tmp_path / "a.json", b"{}")
    mask = os.umask(0o022)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("inside", ["", "sub/deeper"])
def test_an_output_folder_that_is_a_file_is_refused_naming_the_file(tmp_path: Path,
                                                                    inside: str) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(OutputError) as caught:
        io.check_output_folder(afile / inside)
    assert caught.value.source == str(afile)
    assert caught.value.problem.startswith("exists and is not a folder")
    with pytest.raises(OutputError) as caught:
        io.write_file(afile / inside / "x.csv", b"")
    assert caught.value.source == str(afile)
    assert io.check_output_folder(tmp_path / "new" / "folder") == tmp_path / "new" / "folder"
    assert not (tmp_path / "new").exists()  # checking makes nothing


def test_output_error_is_an_input_error_that_crosses_processes() -> None:
    error = pickle.loads(pickle.dumps(OutputError("/data/masks/a.tif", "cannot write")))
    assert isinstance(error, InputError)
    assert (error.source, error.problem) == ("/data/masks/a.tif", "cannot write")


def test_write_raster_gives_the_bytes_of_a_direct_gdal_write(tmp_path: Path) -> None:
    data = np.random.default_rng(0).integers(0, 256, (3, 70, 90), dtype=np.uint8)
    ours = io.write_raster(tmp_path / "ours.tif", data, **PROFILE, compress="deflate")
    with rasterio.open(tmp_path / "gdal.tif", "w", count=3, height=70, width=90,
                       compress="deflate", **PROFILE) as dst:
        dst.write(data)
    assert ours.read_bytes() == (tmp_path / "gdal.tif").read_bytes()
    mask = io.write_raster(tmp_path / "mask.tif", data[0], **PROFILE)
    with rasterio.open(mask) as src:
        assert src.count == 1 and src.transform == PROFILE["transform"]
        np.testing.assert_array_equal(src.read(1), data[0])


def test_raster_complete_tells_whole_rasters_from_cut_ones(tmp_path: Path) -> None:
    data = np.random.default_rng(1).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    whole = io.write_raster(tmp_path / "whole.tif", data, **PROFILE)
    band = io.write_raster(tmp_path / "band.tif", data, **PROFILE, interleave="band")
    assert io.raster_complete(whole) and io.raster_complete(band)
    content = whole.read_bytes()
    damaged = {"empty.tif": b"", "header.tif": content[:100],
               "half.tif": content[:len(content) // 2], "tail.tif": content[:-10],
               "garbage.tif": b"II*\x00" + b"x" * 500, "band-cut.tif": band.read_bytes()[:-10]}
    for name, cut in damaged.items():
        (tmp_path / name).write_bytes(cut)
        assert not io.raster_complete(tmp_path / name), name
    assert not io.raster_complete(tmp_path / "missing.tif")


def test_remove_temporaries_spares_running_writers_and_other_files(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    folder = tmp_path / "AOI_2_Vegas"
    folder.mkdir()
    stale = folder / f".chip_r0_c0.{dead}-abcd_123.part.tif"
    mine = folder / f".chip_r0_c1.{os.getpid()}-abcd_123.part.tif"
    kept = [mine, folder / ".hidden.part.txt", folder / "chip_r0_c0.tif"]
    for path in (stale, *kept):
        path.write_bytes(b"x")
    assert io.remove_temporaries(tmp_path) == 1
    assert not stale.exists() and all(p.exists() for p in kept)
    with io.atomic_path(folder / "x.tif") as tmp:
        assert io.is_temporary(tmp)  # what remove_temporaries looks for
    assert not io.is_temporary(folder / "x.tif")


def test_record_params_refuses_an_unreadable_file_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "masks.json").write_text('{"boundary_width": 3,')
    with pytest.raises(InputError, match="masks.json: unreadable parameter file"):
        io.record_params(tmp_path, "masks.json", {"boundary_width": 3}, "masks")


@pytest.mark.parametrize(("content", "problem"), [
    (bytes(range(256)), "not UTF-8 text: NUL byte at byte offset 0"),
    ('{"note": "Café"}'.encode("latin-1"), "not UTF-8 text: byte 0xe9"),
    (b"[" * 20000 + b"]" * 20000, "not valid JSON: nested too deeply"),
])
def test_record_params_refuses_a_binary_or_garbage_file_in_one_line(tmp_path: Path,
                                                                    content: bytes,
                                                                    problem: str) -> None:
    (tmp_path / "masks.json").write_bytes(content)
    with pytest.raises(InputError) as caught:
        io.record_params(tmp_path, "masks.json", {"boundary_width": 3}, "masks")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'masks.json'}: unreadable parameter file ({problem}")
    assert "\n" not in message


def test_record_params_refuses_a_folder_in_its_place(tmp_path: Path) -> None:
    (tmp_path / "masks.json").mkdir()
    with pytest.raises(InputError, match=r"unreadable parameter file \(is a folder"):
        io.record_params(tmp_path, "masks.json", {"boundary_width": 3}, "masks")
