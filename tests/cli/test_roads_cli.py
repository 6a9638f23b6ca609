"""Roads through the command line: ``finetune --task roads``, then ``predict RUN_DIR`` draws
roads without being told, and ``evaluate`` scores the run by APLS; wrong tasks get one line."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest

from aerialsam import cli
from aerialsam.config import stage_paths
from aerialsam.data import spacenet3

# the smoke road tiles of Vegas (one to train on, one to validate on), SAM-free and tiny
VEGAS_ROADS = ("profile: smoke\ntask: roads\naois: [AOI_2_Vegas]\nmodel: unet\nsteps: 1\n"
               "warmup_steps: 1\ndevice: cpu\namp: 'off'\n")


def run(argv: list[str]) -> tuple[int, str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = cli.main(argv)
    return status, printed.getvalue()


@pytest.fixture(scope="module")
def road_run(smoke_road_data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = tmp_path_factory.mktemp("roads_cli") / "vegas_roads.yaml"
    config.write_text(VEGAS_ROADS)
    status, printed = run(["finetune", str(config), "--data", str(smoke_road_data_dir),
                           "--name", "cli_roads"])
    assert status == 0
    run_dir = stage_paths(smoke_road_data_dir).runs / "cli_roads"
    assert printed.strip() == str(run_dir)
    return run_dir


def test_finetune_for_roads_records_the_task_and_apls(road_run: Path) -> None:
    saved = json.loads((road_run / "run.json").read_text())
    assert saved["config"]["task"] == "roads" and "val_apls" in saved["metrics"]
    assert "road_graph" in saved


def test_predict_with_a_road_run_writes_roads(road_run: Path, smoke_road_data_dir: Path,
                                              tmp_path: Path) -> None:
    tile = spacenet3.find_road_tiles(smoke_road_data_dir / "raw", "vegas")[0].image_path
    status, printed = run(["predict", str(road_run), str(tile), str(tmp_path / "pred")])
    assert status == 0 and printed.strip().endswith("roads.csv")
    assert list(pd.read_csv(printed.strip()).columns) == ["ImageId", "WKT_Pix"]
    assert list((tmp_path / "pred" / "roads").glob("*.gpkg"))


def test_evaluate_picks_the_road_task_from_the_run(road_run: Path, smoke_road_data_dir: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    status, printed = run(["evaluate", str(road_run), "--data", str(smoke_road_data_dir),
                           "--aoi", "vegas", "--name", "roads_cli"])
    assert status == 0
    summary = pd.read_csv(stage_paths(smoke_road_data_dir).reports / "roads_cli" / "summary.csv")
    assert {"apls_AOI_2_Vegas", "overall_apls", "pixel_iou"} <= set(summary.columns)


def test_wrong_tasks_get_one_line(road_run: Path, smoke_road_data_dir: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    status, _ = run(["evaluate", str(road_run), "--task", "buildings", "--data",
                     str(smoke_road_data_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "trained for roads, not buildings" in err[0]
    tile = spacenet3.find_road_tiles(smoke_road_data_dir / "raw", "vegas")[0].image_path
    status, _ = run(["predict", str(road_run), str(tile), str(tmp_path / "p"), "--task", "roads"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "--task is for zero-shot sam2" in err[0]
    status, _ = run(["predict", "sam2", str(tile), str(tmp_path / "p"), "--task", "roads",
                     "--mode", "box", "--checkpoint", "random"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "auto or oracle" in err[0]
