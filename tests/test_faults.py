"""Integrity under faults: a disk that fills up, and ``kill -9`` at a random moment.

Whatever the fault, no file at a final name is cut short, the command says what happened in
one line naming the output (and nothing else reaches stderr, GDAL's messages included), and a
rerun finishes the job: its result equals an uninterrupted run's, file for file and value for
value.
"""

from __future__ import annotations

import errno
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio

from aerialsam import cli
from aerialsam.io import is_temporary, raster_complete
from aerialsam.prep import chips
from tests.data.test_download import IMAGE, KEY, vegas_tarball, write_manifest
from tests.fake_bucket import FakeBucket, tile_objects

ROOT = Path(__file__).resolve().parents[1]
LABEL = ("spacenet/SN2_buildings/train/AOI_2_Vegas/geojson_buildings/"
         "SN2_buildings_train_AOI_2_Vegas_geojson_buildings_img{}.geojson")
DISK_FULL = ("cannot write: the disk is full (ENOSPC, no space left on device); free some "
             "space and rerun: finished files are kept and the rest are written")


class FullDisk:
    """A disk with ``room`` bytes left: writes through ``Path.open`` fail with ENOSPC past it.

    Every output of the stages reaches the disk through ``Path.open`` (:mod:`aerialsam.io`),
    so this stands in for a file system that fills up; ``monkeypatch.undo()`` frees it.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, room: int) -> None:
        self.room = room
        self.failures = 0
        real_open = Path.open

        def open_(path: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
            handle = real_open(path, mode, *args, **kwargs)
            return _Filling(handle, self) if set(mode) & set("wax") else handle

        monkeypatch.setattr(Path, "open", open_)


class _Filling:
    """A file handle on a :class:`FullDisk`: what fits is written, then ENOSPC."""

    def __init__(self, handle: object, disk: FullDisk) -> None:
        self.handle, self.disk = handle, disk

    def write(self, data: bytes | str) -> int:
        fits = min(len(data), self.disk.room)
        self.handle.write(data[:fits])
        self.disk.room -= fits
        if fits < len(data):
            self.disk.failures += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # no file name, as a write
        return fits

    def __getattr__(self, name: str) -> object:
        return getattr(self.handle, name)

    def __enter__(self) -> _Filling:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()


# ---- comparing a run with an uninterrupted one ----------------------------------------------

def final_files(folder: Path) -> dict[str, Path]:
    """The files at final names under ``folder`` (temporaries left out), by relative path."""
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and not is_temporary(p)}


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and is_temporary(p)]


def assert_same_file(got: Path, want: Path) -> None:
    """Same bytes; for rasters, first the same values and grid (the clearer failure)."""
    if want.suffix == ".tif":
        with rasterio.open(got) as a, rasterio.open(want) as b:
            assert (a.crs, a.transform, a.nodata, a.dtypes) == (b.crs, b.transform, b.nodata,
                                                                b.dtypes), got
            np.testing.assert_array_equal(a.read(), b.read(), err_msg=str(got))
    assert got.read_bytes() == want.read_bytes(), got


def assert_only_whole_files(partial: Path, reference: Path) -> int:
    """After a fault every file at a final name is one the uninterrupted run made, whole.

    Returns:
        How many there are.
    """
    want = final_files(reference)
    got = final_files(partial) if partial.exists() else {}
    for name, path in got.items():
        assert name in want, name
        assert path.suffix != ".tif" or raster_complete(path), name
        assert_same_file(path, want[name])
    return len(got)


def assert_same_outputs(result: Path, reference: Path) -> None:
    """The folder equals the uninterrupted run's: same files, bytes and values; no temporary."""
    got, want = final_files(result), final_files(reference)
    assert sorted(got) == sorted(want)
    for name, path in want.items():
        assert_same_file(got[name], path)
    assert not temporaries(result)


def count_tifs(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*.tif") if not is_temporary(p)) if folder.exists() else 0


def one_error_line(capfd: pytest.CaptureFixture) -> str:
    """The one line the command wrote to stderr (file descriptor 2: GDAL's too)."""
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "?:" not in err[0] and "Traceback" not in err[0]
    return err[0]


# ---- the reference runs ---------------------------------------------------------------------

CHIP_ARGS = ["--size", "128", "--overlap", "16"]


@pytest.fixture(scope="module")
def chip_reference(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted ``chip`` run: 432 chips of 128 px from the 12 demo tiles."""
    out = tmp_path_factory.mktemp("chips-reference")
    assert cli.main(["chip", str(demo_root), str(out), *CHIP_ARGS]) == 0
    assert count_tifs(out) == 432
    return out


@pytest.fixture(scope="module")
def chips_256(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """108 chips of 256 px: the input of ``masks``."""
    out = tmp_path_factory.mktemp("chips-256")
    chips.chip_sources(demo_root, out, size=256, overlap=32)
    return out


@pytest.fixture(scope="module")
def mask_reference(chips_256: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted ``masks`` run: 324 masks (footprint, boundary, contact)."""
    out = tmp_path_factory.mktemp("masks-reference")
    assert cli.main(["masks", str(chips_256), str(out)]) == 0
    assert count_tifs(out) == 324
    return out


def tif_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.tif"))


# ---- a disk that fills up -------------------------------------------------------------------

def test_masks_on_a_full_disk_fail_in_one_line_and_the_rerun_finishes(
        chips_256: Path, mask_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "masks"
    args = ["masks", str(chips_256), str(out)]
    capfd.readouterr()
    disk = FullDisk(monkeypatch, room=tif_bytes(mask_reference) // 3)
    assert cli.main(args) == 2
    line = one_error_line(capfd)
    assert re.fullmatch(rf"aerialsam masks: error: {re.escape(str(out))}/"
                        rf"(footprint|boundary|contact)/AOI_\w+/AOI_\w+\.tif: "
                        rf"{re.escape(DISK_FULL)}", line), line
    assert disk.failures == 1  # the run stopped at the first failure, tile after tile did not
    kept = assert_only_whole_files(out, mask_reference)
    assert not temporaries(out)
    masks_kept = kept - 1  # masks.json
    assert 0 < masks_kept < 324
    monkeypatch.undo()  # space is freed
    assert cli.main(args) == 0
    assert capfd.readouterr().out.startswith(
        f"{324 - masks_kept} masks written, {masks_kept} already there, 0 of 12 tiles failed")
    assert_same_outputs(out, mask_reference)


def test_masks_cut_short_by_an_older_version_are_written_again(
        chips_256: Path, mask_reference: Path, tmp_path: Path,
        capfd: pytest.CaptureFixture) -> None:
    # Versions before atomic raster writes left such files at final names on a full disk.
    out = tmp_path / "masks"
    shutil.copytree(mask_reference, out)
    paths = sorted(out.rglob("*.tif"))
    damaged = {paths[0]: b"", paths[100]: paths[100].read_bytes()[:200],
               paths[200]: paths[200].read_bytes()[:paths[200].stat().st_size // 2],
               paths[300]: b"II*\x00" + bytes(1000)}
    for path, content in damaged.items():
        path.write_bytes(content)
    capfd.readouterr()
    assert cli.main(["masks", str(chips_256), str(out)]) == 0
    captured = capfd.readouterr()
    assert captured.out.startswith(
        f"{len(damaged)} masks written, {324 - len(damaged)} already there")
    assert captured.err == ""  # probing the damaged files is silent, GDAL included
    assert_same_outputs(out, mask_reference)


def test_chip_on_a_full_disk_names_the_chip_not_the_tile_and_the_rerun_finishes(
        demo_root: Path, chip_reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture) -> None:
    out = tmp_path / "chips"
    args = ["chip", str(demo_root), str(out), *CHIP_ARGS]
    capfd.readouterr()
    FullDisk(monkeypatch, room=tif_bytes(chip_reference) // 2)
    assert cli.main(args) == 2
    line = one_error_line(capfd)
    assert re.fullmatch(rf"aerialsam chip: error: {re.escape(str(out))}/AOI_\w+/AOI_\w+\.tif: "
                        rf"{re.escape(DISK_FULL)}", line), line
    assert "corrupt" not in line and str(demo_root) not in line
    assert 0 < assert_only_whole_files(out, chip_reference) < 432
    assert not temporaries(out)
    monkeypatch.undo()
    assert cli.main(args) == 0
    assert_same_outputs(out, chip_reference)


def test_an_output_that_is_a_file_is_reported_against_the_output(
        demo_root: Path, chips_256: Path, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    tile = next(demo_root.rglob("RGB-PanSharpen_*.tif"))
    labels = next(demo_root.rglob("buildings_*.geojson"))
    capfd.readouterr()
    for args, out in ((["chip", str(tile), str(afile)], afile),
                      (["chip", str(demo_root), str(afile / "sub")], afile / "sub"),
                      (["masks", str(chips_256), str(afile)], afile),
                      (["rasterize", str(tile), str(labels), str(afile / "m.tif")], None)):
        assert cli.main(args) == 2
        line = one_error_line(capfd)
        assert line.startswith(f"aerialsam {args[0]}: error: {afile}: exists and is not a "
                               "folder"), line
        if out is not None and out != afile:
            assert f"cannot make {out} inside it" in line
        assert str(tile) not in line
    assert afile.read_text() == ""


def test_tiles_on_a_full_disk_name_the_file_are_not_retried_and_the_rerun_finishes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    with FakeBucket() as bucket:
        bucket.objects.update(tile_objects("AOI_2_Vegas", [1, 2, 3, 4], image_bytes=2000))
        args = ["download", "--aoi", "vegas", "--tiles", "4", "--workers", "1", "--endpoint",
                bucket.url, "--dest", str(tmp_path)]
        FullDisk(monkeypatch, room=5000)
        assert cli.main(args) == 2
        line = one_error_line(capfd)
        folder = tmp_path / "AOI_2_Vegas_Train"
        assert re.fullmatch(rf"aerialsam download: error: {re.escape(str(folder))}/\S+: "
                            rf"{re.escape(DISK_FULL)}", line), line
        # A full disk is no dropped connection: nothing was fetched twice.
        assert all(len(bucket.gets(key)) <= 1 for key in bucket.objects)
        for name, path in final_files(tmp_path).items():
            assert path.read_bytes() == downloaded_tiles(bucket, 4)[name]
        assert not temporaries(tmp_path)
        monkeypatch.undo()
        assert cli.main(args) == 0
        assert_tiles_downloaded(tmp_path, bucket, 4)


def test_tarball_on_a_full_disk_keeps_its_partial_and_the_rerun_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    data, files = vegas_tarball()
    manifest = write_manifest(tmp_path / "manifest.yaml", data)
    dest = tmp_path / "raw"
    with FakeBucket(objects={KEY: data}) as bucket:
        args = ["download", "--aoi", "vegas", "--tarball", "--endpoint", bucket.url,
                "--manifest", str(manifest), "--dest", str(dest)]
        FullDisk(monkeypatch, room=100_000)
        assert cli.main(args) == 2
        part = dest / ".downloads" / "SN2_buildings_train_AOI_2_Vegas.tar.gz.part"
        assert one_error_line(capfd) == (
            f"aerialsam download: error: {part}: cannot write: the disk is full (ENOSPC, no "
            "space left on device); free some space and rerun: the download resumes after the "
            "100000 bytes kept")
        assert part.stat().st_size == 100_000
        monkeypatch.undo()
        assert cli.main(args) == 0
        assert [g.range for g in bucket.gets(KEY)] == [None, "bytes=100000-"]
    for name, content in files.items():
        assert (dest / name).read_bytes() == content
    assert not (dest / ".downloads").exists()


def downloaded_tiles(bucket: FakeBucket, n: int) -> dict[str, bytes]:
    """What ``download --tiles n`` puts in the raw folder, by relative path."""
    folder = "AOI_2_Vegas_Train"
    return {**{f"{folder}/RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img{i}.tif":
               bucket.objects[IMAGE.format(i)] for i in range(1, n + 1)},
            **{f"{folder}/geojson/buildings/buildings_AOI_2_Vegas_img{i}.geojson":
               bucket.objects[LABEL.format(i)] for i in range(1, n + 1)}}


def assert_tiles_downloaded(dest: Path, bucket: FakeBucket, n: int) -> None:
    got = {name: path.read_bytes() for name, path in final_files(dest).items()}
    assert got == downloaded_tiles(bucket, n)
    assert not temporaries(dest)


# ---- kill -9 at a random moment -------------------------------------------------------------

def kill_at_random(args: list[str], seed: int, progress: Callable[[], int], total: int) -> None:
    """Run ``python -m aerialsam *args`` and SIGKILL it once a random share of its work is done.

    The moment is drawn (seeded) as a point in the first half of the work, measured by
    ``progress`` (outputs written, bytes received), then a few random milliseconds more.
    """
    rng = random.Random(seed)
    target = rng.randint(1, max(1, total // 2))
    process = subprocess.Popen([sys.executable, "-m", "aerialsam", *args], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 60
    with process:
        while process.poll() is None and progress() < target and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.01))
        running = process.poll() is None
        process.kill()
        process.wait()
        err = process.stderr.read().decode()
    assert running, f"the command ended before the kill: {err}"


SEEDS = [0, 1]


@pytest.mark.parametrize("seed", SEEDS)
def test_chip_killed_at_a_random_moment_then_rerun_equals_an_uninterrupted_run(
        seed: int, demo_root: Path, chip_reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "chips"
    args = ["chip", str(demo_root), str(out), *CHIP_ARGS]
    kill_at_random(args, seed, lambda: count_tifs(out), 432)
    assert 0 < assert_only_whole_files(out, chip_reference) < 432
    assert cli.main(args) == 0
    assert_same_outputs(out, chip_reference)


@pytest.mark.parametrize("seed", SEEDS)
def test_masks_killed_at_a_random_moment_then_rerun_equals_an_uninterrupted_run(
        seed: int, chips_256: Path, mask_reference: Path, tmp_path: Path) -> None:
    out = tmp_path / "masks"
    args = ["masks", str(chips_256), str(out)]
    kill_at_random(args, seed, lambda: count_tifs(out), 324)
    assert 0 < assert_only_whole_files(out, mask_reference) < 324
    assert cli.main(args) == 0
    assert_same_outputs(out, mask_reference)


@pytest.fixture
def slow_bucket() -> Iterator[FakeBucket]:
    with FakeBucket(latency_s=0.01) as bucket:
        bucket.objects.update(tile_objects("AOI_2_Vegas", list(range(1, 21)), image_bytes=3000))
        yield bucket


@pytest.mark.parametrize("seed", SEEDS)
def test_tile_download_killed_at_a_random_moment_then_rerun_equals_an_uninterrupted_run(
        seed: int, slow_bucket: FakeBucket, tmp_path: Path) -> None:
    args = ["download", "--aoi", "vegas", "--tiles", "20", "--workers", "2", "--endpoint",
            slow_bucket.url, "--dest", str(tmp_path)]
    kill_at_random(args, seed, lambda: len(final_files(tmp_path)), 40)
    expected = downloaded_tiles(slow_bucket, 20)
    partial = final_files(tmp_path)
    assert 0 < len(partial) < 40
    for name, path in partial.items():
        assert path.read_bytes() == expected[name], name
    assert cli.main(args) == 0
    assert_tiles_downloaded(tmp_path, slow_bucket, 20)


@pytest.mark.parametrize("seed", SEEDS)
def test_tarball_download_killed_at_a_random_moment_resumes_and_equals_an_uninterrupted_run(
        seed: int, tmp_path: Path) -> None:
    # Bodies are read 1 MiB at a time: 2.5 MB lets the partial grow in steps before the end.
    data, files = vegas_tarball(2_500_000)
    manifest = write_manifest(tmp_path / "manifest.yaml", data)
    dest = tmp_path / "raw"
    part = dest / ".downloads" / "SN2_buildings_train_AOI_2_Vegas.tar.gz.part"
    with FakeBucket(objects={KEY: data}, chunk_delay_s=0.01) as bucket:
        args = ["download", "--aoi", "vegas", "--tarball", "--endpoint", bucket.url,
                "--manifest", str(manifest), "--dest", str(dest)]
        kill_at_random(args, seed, lambda: part.stat().st_size if part.exists() else 0,
                       len(data))
        kept = part.stat().st_size
        assert 0 < kept < len(data) and data.startswith(part.read_bytes())
        assert not (dest / "AOI_2_Vegas_Train").exists()
        bucket.chunk_delay_s = 0
        assert cli.main(args) == 0
        assert [g.range for g in bucket.gets(KEY)][-1] == f"bytes={kept}-"
    for name, content in files.items():
        assert (dest / name).read_bytes() == content
    assert not (dest / ".downloads").exists()
