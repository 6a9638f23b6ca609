"""The command line: `aerialsam demo`, `python -m aerialsam`, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from aerialsam import cli
from aerialsam.data import spacenet


def test_demo_command_writes_aois(tmp_path: Path, capsys) -> None:
    assert cli.main(["demo", str(tmp_path), "--tiles-per-aoi", "2", "--seed", "3",
                     "--aoi", "vegas,paris"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "AOI_2_Vegas_Train"), str(tmp_path / "AOI_3_Paris_Train")]
    assert len(spacenet.find_tiles(tmp_path)) == 4


def test_unwritable_destination_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "aerialsam", "demo", str(blocker / "out")],
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aerialsam demo: error:")
    assert str(blocker) in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_argument_is_one_line(tmp_path: Path, capsys) -> None:
    assert cli.main(["demo", str(tmp_path), "--tiles-per-aoi", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--tiles-per-aoi: must be at least 1" in err


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("aerialsam")
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("aerialsam ")


def test_rasterize_refuses_labels_of_another_tile(samples_dir: Path, tmp_path: Path,
                                                   capsys) -> None:
    truth = (samples_dir / "sn2_truth_csv" / "SN2_sample_truth.csv").read_text().splitlines()
    one = tmp_path / "one.csv"
    one.write_text("\n".join([truth[0]] + [r for r in truth if r.startswith(
        "AOI_2_Vegas_img3457,")]) + "\n")
    image = samples_dir / "vegas_sn2_rgb" / "RGB-PanSharpen_AOI_2_Vegas_img1010.tif"
    assert cli.main(["rasterize", str(image), str(one), str(tmp_path / "m.tif")]) == 2
    err = capsys.readouterr().err
    assert "labels are for AOI_2_Vegas_img3457, not for the image AOI_2_Vegas_img1010" in err
    assert not (tmp_path / "m.tif").exists()


def test_output_errors_name_the_users_path(samples_dir: Path, tmp_path: Path, capsys) -> None:
    image = samples_dir / "atlanta_solaris" / "sample_geotiff.tif"
    labels = samples_dir / "atlanta_solaris" / "sample.csv"
    folder = tmp_path / "adir"
    folder.mkdir()
    assert cli.main(["rasterize", str(image), str(labels), str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"aerialsam rasterize: error: {folder}: is a folder; give a file name "
                   "for the output"]
    afile = tmp_path / "afile"
    afile.write_text("")
    assert cli.main(["demo", str(afile)]) == 2
    assert f"{afile}: exists and is not a folder" in capsys.readouterr().err


def test_demo_roads_calls_the_road_demo_with_the_options(tmp_path: Path, capsys,
                                                         monkeypatch) -> None:
    calls = []

    def road_demo(out_dir, tiles_per_aoi, seed, aois):
        calls.append((out_dir, tiles_per_aoi, seed, aois))
        return [out_dir / "SN3_roads_train_AOI_2_Vegas", out_dir / "SN3_roads_train_AOI_3_Paris"]

    def building_demo(*args, **kwargs):
        raise AssertionError("--dataset roads ran the buildings demo")

    monkeypatch.setattr("aerialsam.data.demo_roads.make_road_demo", road_demo)
    monkeypatch.setattr("aerialsam.data.demo.make_demo", building_demo)
    assert cli.main(["demo", str(tmp_path), "--dataset", "roads", "--tiles-per-aoi", "2",
                     "--seed", "3", "--aoi", "vegas,paris"]) == 0
    assert calls == [(tmp_path, 2, 3, ["vegas", "paris"])]
    assert capsys.readouterr().out.split() == [str(tmp_path / "SN3_roads_train_AOI_2_Vegas"),
                                               str(tmp_path / "SN3_roads_train_AOI_3_Paris")]


def test_demo_roads_writes_the_spacenet3_layout(tmp_path: Path, capsys) -> None:
    assert cli.main(["demo", str(tmp_path), "--dataset", "roads", "--tiles-per-aoi", "1",
                     "--aoi", "khartoum"]) == 0
    folder = tmp_path / "SN3_roads_train_AOI_5_Khartoum"
    assert capsys.readouterr().out.split() == [str(folder)]
    images = sorted((folder / "PS-RGB").glob("SN3_roads_train_AOI_5_Khartoum_PS-RGB_img*.tif"))
    labels = sorted((folder / "geojson_roads").glob(
        "SN3_roads_train_AOI_5_Khartoum_geojson_roads_img*.geojson"))
    assert len(images) == len(labels) == 1
    assert not list(tmp_path.glob("AOI_*"))


def test_rasterize_road_writes_a_metre_buffer_on_the_images_grid(samples_dir: Path,
                                                                tmp_path: Path, capsys) -> None:
    folder = samples_dir / "sn3_roads"
    image = folder / "RGB-PanSharpen_AOI_2_Vegas_img0.tif"
    out = tmp_path / "road.tif"
    assert cli.main(["rasterize", str(image), str(folder / "AOI_2_Vegas_img0.geojson"),
                     str(out), "--kind", "road"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    wide = tmp_path / "wide.tif"
    assert cli.main(["rasterize", str(image), str(folder / "truth_AOI_2_Vegas_img0.csv"),
                     str(wide), "--kind", "road", "--road-radius-m", "4"]) == 0
    with rasterio.open(image) as src, rasterio.open(out) as mask, rasterio.open(wide) as big:
        assert (mask.crs, mask.transform, mask.shape) == (src.crs, src.transform, src.shape)
        road, wider = mask.read(1), big.read(1)
    assert road.dtype == np.uint8 and set(np.unique(road)) == {0, 255}
    assert ((road > 0) & (wider == 0)).sum() <= 5 and (wider > 0).sum() > 1.7 * (road > 0).sum()


def test_building_labels_given_as_roads_are_one_line(samples_dir: Path, tmp_path: Path) -> None:
    image = samples_dir / "atlanta_solaris" / "sample_geotiff.tif"
    labels = samples_dir / "atlanta_solaris" / "geotiff_labels.geojson"
    result = subprocess.run([sys.executable, "-m", "aerialsam", "rasterize", str(image),
                             str(labels), str(tmp_path / "m.tif"), "--kind", "road"],
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"aerialsam rasterize: error: {labels}: expected road LineStrings, found ['Polygon'] "
        "(feature 0)"]
    assert not (tmp_path / "m.tif").exists()


def test_a_bug_says_so_in_one_line_then_keeps_its_traceback(tmp_path: Path, capsys,
                                                            monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero\nsecond line")

    monkeypatch.setattr("aerialsam.data.demo.make_demo", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main(["demo", str(tmp_path), "--tiles-per-aoi", "1"])
    assert capsys.readouterr().err.splitlines() == [
        "aerialsam demo: internal error (a bug in aerialsam; please report it with the command "
        "line and this traceback): ZeroDivisionError: division by zero / second line"]


@pytest.mark.parametrize(("error", "line"), [
    (OSError(28, "No space left on device"), "aerialsam demo: error: No space left on device "
                                             "(errno 28)"),
    (OSError("disk gone"), "aerialsam demo: error: disk gone"),
    (PermissionError(13, "Permission denied", "/data/x.tif"),
     "aerialsam demo: error: /data/x.tif: Permission denied"),
    (MemoryError(), "aerialsam demo: error: out of memory: an input or an option (a size, a "
                    "batch, a tile count) is too large for this machine"),
])
def test_system_errors_are_one_line(tmp_path: Path, capsys, monkeypatch, error: BaseException,
                                    line: str) -> None:
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr("aerialsam.data.demo.make_demo", failing)
    assert cli.main(["demo", str(tmp_path)]) == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_refused_options_are_one_line_with_a_pointer_to_help(capsys) -> None:
    assert cli.main(["predict", "sam2", "x.tif", "out", "--threshold", "2"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "aerialsam predict: error: argument --threshold: 2 is not a probability (a number from "
        "0 to 1) (see `aerialsam predict --help`)"]
    assert cli.main(["finetune", "smoke", "--lr", "nan"]) == 2
    assert "argument --lr: 'nan' is not a finite number" in capsys.readouterr().err
    assert cli.main(["--version"]) == 0
