"""``aerialsam predict``: the output layout, reruns, and one-line errors for bad input.

Runs in process (``cli.main``) with SAM 2.1 tiny at 256 px and random weights on a demo AOI
of two tiles; each tile is one chip (``--size 650``) so the whole run costs two encoder passes.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
import torch

from aerialsam import cli
from aerialsam.cli import predict as predict_command
from aerialsam.data import demo, spacenet
from aerialsam.models.sam2 import compile_encoder, save_random_checkpoint
from aerialsam.training import runs
from aerialsam.training.train_config import make_config
from tests.run_helpers import unet_run, write_raster

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


# --- any file name; damaged checkpoints; images no model can predict ----------------------

@pytest.fixture(scope="module")
def unet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished U-Net run folder (untrained weights): prediction costs a fraction of SAM 2."""
    return unet_run(tmp_path_factory.mktemp("unet-run") / "unet_small")


@pytest.fixture(scope="module")
def sam2_run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run.json of a fine-tuned SAM 2 run, without its model.pt: a prediction that gets
    as far as loading the model says that it is missing, so refusals before it show."""
    run_dir = tmp_path_factory.mktemp("sam2-run") / "sam2_tiny_decoder_none"
    runs.write_run_json(run_dir, make_config({"model": "sam2", "checkpoint": "random",
                                              "image_size": 64, "device": "cpu"}),
                        chip_size=256, overlap=32, threshold=0.5, step=2)
    return run_dir


def small_image(path: Path, seed: int = 0) -> Path:
    """A 160 x 160 uint8 RGB GeoTIFF of 8 px blocks (the U-Net predicts it in one chip)."""
    blocks = np.random.default_rng(seed).integers(0, 256, (3, 20, 20)).astype(np.uint8)
    return write_raster(path, np.kron(blocks, np.ones((8, 8), np.uint8)))


@pytest.fixture
def no_model_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if predict loads a model (its inputs must be refused before)."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the input was checked")

    monkeypatch.setattr(predict_command, "load_sam2", refuse)
    monkeypatch.setattr(predict_command, "load_run_model", refuse)


def test_any_file_name_predicts_under_its_stem(unet_dir: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    image = small_image(tmp_path / "myortho.tif")
    out = tmp_path / "out"
    assert cli.main(["predict", str(unet_dir), str(image), str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "proposals.csv")
    assert sorted(p.name for folder in ("prob", "polygons", "csv")
                  for p in (out / folder).iterdir()) == ["myortho.csv", "myortho.gpkg",
                                                         "myortho.tif"]
    table = pd.read_csv(out / "proposals.csv", dtype={"ImageId": str})
    assert set(table["ImageId"]) == {"myortho"}
    assert json.loads((out / "seconds.json").read_text()).keys() == {"myortho"}


def test_two_images_of_one_name_are_refused_before_the_model(
        unet_dir: Path, tmp_path: Path, no_model_load: None,
        capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    first, second = small_image(folder / "0012.tif"), small_image(folder / "0012.tiff", 1)
    assert cli.main(["predict", str(unet_dir), str(folder), str(tmp_path / "o")]) == 2
    assert error_lines(capsys) == [f"aerialsam predict: error: {second}: has the image id "
                                   f"'0012' of {first}: their predictions would overwrite "
                                   "each other; predict them separately"]
    assert not (tmp_path / "o").exists()


class _RunsCode:
    """Pickles as a call of ``os.mkdir``: loading it unsafely would make ``self.marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def damage_checkpoint(path: Path, how: str, marker: Path) -> None:
    """Make ``path`` truncated, garbage, or a pickle that would run code when loaded."""
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(10_000))
    else:
        torch.save({"model": _RunsCode(marker)}, path)


@pytest.mark.parametrize("how", ["truncated", "garbage", "code"])
def test_damaged_checkpoint_file_is_one_line(how: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    image = small_image(tmp_path / "image.tif")
    checkpoint = save_random_checkpoint("tiny", tmp_path / "sam2.1_hiera_tiny.pt",
                                        image_size=256)
    marker = tmp_path / "the_pickle_ran"
    damage_checkpoint(checkpoint, how, marker)
    argv = ["predict", "sam2", str(image), str(tmp_path / "o"), "--checkpoint", str(checkpoint),
            "--image-size", "256"]
    assert cli.main(argv) == 2
    [line] = error_lines(capsys)
    assert line.startswith(f"aerialsam predict: error: {checkpoint}: not a readable PyTorch "
                           "checkpoint ("), line
    assert not marker.exists()
    if how == "code":
        assert "GLOBAL posix.mkdir" in line and "would run code (refused)" in line


@pytest.mark.parametrize("how", ["truncated", "garbage", "code"])
def test_run_with_damaged_model_file_is_one_line(how: str, unet_dir: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(unet_dir, run_dir)
    marker = tmp_path / "the_pickle_ran"
    damage_checkpoint(run_dir / runs.MODEL_FILE, how, marker)
    image = small_image(tmp_path / "image.tif")
    assert cli.main(["predict", str(run_dir), str(image), str(tmp_path / "o")]) == 2
    [line] = error_lines(capsys)
    assert line.startswith(f"aerialsam predict: error: {run_dir / runs.MODEL_FILE}: not a "
                           "readable PyTorch checkpoint ("), line
    assert line.endswith(f"delete it and resume the run (`aerialsam finetune --resume "
                         f"{run_dir}`) to write it again")
    assert not marker.exists()


def bad_image(folder: Path, case: str) -> tuple[Path, str]:
    """An image no model can predict, named like a SpaceNet tile, and the problem's text."""
    path = folder / "RGB-PanSharpen_AOI_2_Vegas_img9.tif"
    if case == "all_nan":
        write_raster(path, np.full((3, 64, 64), np.nan, np.float32))
        return path, "bands 1, 2, 3 hold only nodata (the nodata value, NaN or infinity): " \
                     "nothing to predict"
    if case == "all_nodata":
        write_raster(path, np.zeros((3, 64, 64), np.uint16), nodata=0)
        return path, "bands 1, 2, 3 hold only nodata"
    if case == "grey_nan":
        write_raster(path, np.full((1, 64, 64), np.nan, np.float32))
        return path, "band 1 holds only nodata"
    if case == "two_bands":
        write_raster(path, np.full((2, 64, 64), 100, np.uint8))
        return path, "has 2 bands; expected 1 (grey) or at least 3 (R, G, B)"
    path.write_bytes(b"")
    return path, "not a readable raster"


@pytest.mark.parametrize("case", ["all_nan", "all_nodata", "grey_nan", "two_bands", "empty"])
@pytest.mark.parametrize("model", ["sam2", "sam2_run", "unet_run"])
def test_every_model_refuses_an_image_without_data_before_loading(
        model: str, case: str, unet_dir: Path, sam2_run_dir: Path, tmp_path: Path,
        no_model_load: None, capsys: pytest.CaptureFixture) -> None:
    image, problem = bad_image(tmp_path, case)
    chosen = {"sam2": "sam2", "sam2_run": str(sam2_run_dir), "unet_run": str(unet_dir)}[model]
    options = ["--checkpoint", "random", "--image-size", "256"] if model == "sam2" else []
    assert cli.main(["predict", chosen, str(image), str(tmp_path / "o"), *options]) == 2
    [line] = error_lines(capsys)
    assert line.startswith(f"aerialsam predict: error: {image}: {problem}"), line
    assert not (tmp_path / "o").exists()


def test_absurd_chip_size_is_refused_up_front(unet_dir: Path, tmp_path: Path,
                                              no_model_load: None,
                                              capsys: pytest.CaptureFixture) -> None:
    image = small_image(tmp_path / "image.tif")
    assert cli.main(["predict", str(unet_dir), str(image), str(tmp_path / "o"),
                     "--size", "100000"]) == 2
    assert error_lines(capsys) == ["aerialsam predict: error: argument --size: 100000 px chips "
                                   "would take 28 GiB each (uint8 RGB); use at most 16384 (see "
                                   "`aerialsam predict --help`)"]



def test_compile_compiles_sam2s_encoder_and_refuses_a_unet(
        aoi: Path, unet_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = []

    def eager_compile(model: torch.nn.Module, backend: str = "inductor") -> torch.nn.Module:
        compiled.append(backend)  # the real path, without a minute of inductor on a CPU
        return compile_encoder(model, backend="eager")

    monkeypatch.setattr(predict_command, "compile_encoder", eager_compile)
    out = tmp_path / "compiled"
    assert cli.main(["predict", "sam2", str(aoi), str(out), "--mode", "oracle", "--compile",
                     *FAST]) == 0
    assert compiled == ["inductor"] and (out / "proposals.csv").exists()
    image = next(aoi.glob("RGB-PanSharpen/*.tif"))
    capsys.readouterr()
    assert cli.main(["predict", str(unet_dir), str(image), str(tmp_path / "u"),
                     "--compile"]) == 2
    assert error_lines(capsys) == ["aerialsam predict: error: --compile: compiles SAM 2's "
                                   "image encoder; this run is a U-Net"]
