"""``aerialsam predict``: the output layout, reruns, and one-line errors for bad input.

Runs in process (``cli.main``) with SAM 2.1 tiny at 256 px and random weights on a demo AOI
of two tiles; each tile is one chip (``--size 650``) so the whole run costs two encoder passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from aerialsam import cli
from aerialsam.data import demo, spacenet
from aerialsam.models.sam2 import save_random_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script:FutureWarning")
FAST = ["--image-size", "256", "--checkpoint", "random", "--size", "650", "--overlap", "64"]


@pytest.fixture(scope="module")
def aoi(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo Vegas AOI folder of two tiles."""
    root = tmp_path_factory.mktemp("demo-cli-predict")
    return demo.make_demo(root, tiles_per_aoi=2, aois=["vegas"])[0]


@pytest.fixture(scope="module")
def oracle_run(aoi: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """The prediction folder of an oracle run over the AOI, and the command's stdout lines."""
    out = tmp_path_factory.mktemp("pred") / "oracle"
    argv = ["predict", "sam2", str(aoi), str(out), "--mode", "oracle", *FAST]
    assert cli.main(argv) == 0
    return out, argv


def error_lines(capsys: pytest.CaptureFixture) -> list[str]:
    """What the command printed on stderr, less log records (e.g. the random-weights warning)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines()
            if not line.startswith(("WARNING ", "INFO ", "DEBUG "))]


def test_oracle_run_writes_the_layout(aoi: Path, oracle_run: tuple[Path, list[str]],
                                      capsys: pytest.CaptureFixture) -> None:
    out, _ = oracle_run
    tiles = spacenet.find_tiles(aoi)
    ids = [t.image_id for t in tiles]
    assert ids == ["AOI_2_Vegas_img1", "AOI_2_Vegas_img2"]
    assert sorted(p.name for p in out.iterdir()) == ["csv", "polygons", "predict.json", "prob",
                                                     "proposals.csv", "seconds.json",
                                                     "stretch.json"]
    times = json.loads((out / "seconds.json").read_text())
    assert sorted(times) == ids and all(seconds > 0 for seconds in times.values())
    params = json.loads((out / "predict.json").read_text())
    assert (params["mode"], params["variant"], params["checkpoint"], params["image_size"]) == \
        ("oracle", "tiny", "random", 256)
    assert params["tile"] == {"size": 650, "overlap": 64, "batch_size": 4, "tta": False}
    assert "AOI_2_Vegas" in json.loads((out / "stretch.json").read_text())["aois"]
    for tile in tiles:
        with rasterio.open(tile.image_path) as src, \
                rasterio.open(out / "prob" / f"{tile.image_id}.tif") as prob:
            assert (prob.width, prob.height, prob.count) == (src.width, src.height, 1)
            assert prob.transform == src.transform and prob.crs == src.crs
            values = prob.read(1)
            assert values.dtype == np.float32 and 0 <= values.min() and values.max() <= 1
        polygons = gpd.read_file(out / "polygons" / f"{tile.image_id}.gpkg")
        assert polygons.crs == "EPSG:4326"
        table = (out / "csv" / f"{tile.image_id}.csv").read_text().splitlines()
        assert table[0] == "ImageId,BuildingId,PolygonWKT_Pix,Confidence"
        assert all(line.startswith(f"{tile.image_id},") for line in table[1:])
    combined = (out / "proposals.csv").read_text().splitlines()
    assert combined[0] == "ImageId,BuildingId,PolygonWKT_Pix,Confidence"
    assert {line.split(",")[0] for line in combined[1:]} <= set(ids)
    assert len(combined) == 1 + sum(len((out / "csv" / f"{i}.csv").read_text().splitlines()) - 1
                                    for i in ids)


def test_proposals_score_against_the_truth(aoi: Path, oracle_run: tuple[Path, list[str]],
                                           capsys: pytest.CaptureFixture) -> None:
    out, _ = oracle_run
    capsys.readouterr()
    truth = spacenet.summary_csv_path(aoi)
    assert cli.main(["score", str(truth), str(out / "proposals.csv"), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    vegas = scores["per_aoi"]["AOI_2_Vegas"]
    # Random weights: the score is meaningless, but every truth building is counted.
    n_truth = len(spacenet.read_summary_csv(truth))
    assert vegas["tp"] + vegas["fn"] == n_truth > 0
    assert 0 <= scores["overall_f1"] <= 1


def test_rerun_skips_finished_images(oracle_run: tuple[Path, list[str]],
                                     capsys: pytest.CaptureFixture) -> None:
    out, argv = oracle_run
    files = [p for folder in ("prob", "polygons", "csv") for p in (out / folder).iterdir()]
    assert len(files) == 6
    before = {p: p.stat().st_mtime_ns for p in files}
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert capsys.readouterr().out.strip() == str(out / "proposals.csv")
    assert {p: p.stat().st_mtime_ns for p in files} == before


def test_rerun_with_other_parameters_is_refused(oracle_run: tuple[Path, list[str]],
                                                capsys: pytest.CaptureFixture) -> None:
    out, argv = oracle_run
    capsys.readouterr()
    assert cli.main([*argv, "--threshold", "0.7"]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"aerialsam predict: error: {out}: holds predictions made with")


def test_box_mode_without_prompts(aoi: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["predict", "sam2", str(aoi), str(tmp_path / "o"), "--mode", "box",
                     *FAST]) == 2
    assert error_lines(capsys) == ["aerialsam predict: error: --prompts: --mode box needs a "
                                   "prompt file"]
    assert not (tmp_path / "o").exists()


def test_prompt_file_outside_the_image(aoi: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    image = spacenet.find_tiles(aoi)[0].image_path
    prompts = tmp_path / "paris.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(2.35, 48.85, 2.3501, 48.8501)],
                     crs="EPSG:4326").to_file(prompts)
    assert cli.main(["predict", "sam2", str(image), str(tmp_path / "o"), "--mode", "box",
                     "--prompts", str(prompts), *FAST]) == 2
    assert error_lines(capsys) == [f"aerialsam predict: error: {prompts}: none of its 1 "
                                   f"prompts falls inside {image.name} (another area, or a "
                                   "wrong CRS?)"]


def test_checkpoint_of_the_wrong_variant(aoi: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    small = save_random_checkpoint("small", tmp_path / "sam2.1_hiera_small.pt", image_size=256)
    argv = ["predict", "sam2", str(aoi), str(tmp_path / "o"), "--variant", "tiny",
            "--checkpoint", str(small), "--image-size", "256", "--mode", "oracle"]
    assert cli.main(argv) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1
    assert lines[0].startswith(f"aerialsam predict: error: {small}: does not match SAM 2.1 "
                               "'tiny': it looks like a 'small' checkpoint, not 'tiny'")


@pytest.mark.parametrize(("args", "expected"), [
    (["sam2", "--image-size", "300", "--checkpoint", "random"],
     "--image-size: must be a positive multiple of 32 (e.g. 256, 512, 1024), got 300"),
    (["unet", "--image-size", "256"], "unet: unknown model; use 'sam2'"),
])
def test_bad_arguments(aoi: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                       args: list[str], expected: str) -> None:
    model, *options = args
    assert cli.main(["predict", model, str(aoi), str(tmp_path / "o"), *options]) == 2
    lines = error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"aerialsam predict: error: {expected}")
    assert not (tmp_path / "o").exists()


def test_two_band_raster(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "two.tif"
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 2, "dtype": "uint8",
               "crs": "EPSG:32611",
               "transform": rasterio.transform.from_origin(500_000, 4_000_000, 0.3, 0.3)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((2, 64, 64), 100, np.uint8))
    assert cli.main(["predict", "sam2", str(path), str(tmp_path / "o"), "--image-size", "256",
                     "--checkpoint", "random", "--points-per-side", "2"]) == 2
    assert error_lines(capsys) == [f"aerialsam predict: error: {path}: has 2 bands; expected 1 "
                                   "(grey) or at least 3 (R, G, B)"]
