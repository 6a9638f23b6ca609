"""Faults of the model commands: ``kill -9`` at a random moment, then a rerun.

``aerialsam predict``, ``finetune`` and ``evaluate`` run as the real command in a subprocess,
are killed at a seeded random moment of their work (after they start writing, within the time
the same work took uninterrupted), and are run again (``finetune --resume``). The result must
equal an uninterrupted run's: the same prediction files with the same values, bit-identical
weights, the same scores.

Every run is tiny (untrained U-Net runs, 160 px images or one smoke tile, eight training
steps); most of each test is the subprocess importing torch. Both sides compute on one
thread, so that their floating-point results can be compared exactly.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import torch

from aerialsam import cli
from aerialsam.config import stage_paths
from aerialsam.evaluation import per_city
from aerialsam.training import loop, runs
from tests.run_helpers import unet_run, write_raster
from tests.training_helpers import (
    assert_same_weights,
    checkpoint_weights,
    fake_validation_row,
    final_weights,
    read_metrics,
)

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
START_TIMEOUT = 300.0
"""Seconds a command may take to start writing (importing torch on a busy machine)."""


@pytest.fixture
def one_thread() -> Iterator[None]:
    """torch on one thread in this process too (the subprocess has ``OMP_NUM_THREADS=1``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def kill_at_random_moment(argv: list[str], started: Path, work_seconds: float, seed: int,
                          stderr: Path) -> int:
    """Run ``aerialsam *argv`` in a subprocess; ``kill -9`` it at a random moment of its work.

    The moment is drawn (seeded) within ``work_seconds`` after ``started`` appears (the
    first file the command writes once its model is loaded). Returns the exit status:
    ``-SIGKILL``, or 0 when the command finished first.
    """
    delay = random.Random(seed).uniform(0.1, 0.9) * work_seconds
    with stderr.open("wb") as err:
        process = subprocess.Popen([sys.executable, "-m", "aerialsam", *argv],
                                   stdout=subprocess.DEVNULL, stderr=err, env=ENV)
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not started.exists() and process.poll() is None:
                assert time.monotonic() < deadline, f"{argv[0]} never started writing"
                time.sleep(0.005)
            time.sleep(delay)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            code = process.wait()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert code in (0, -signal.SIGKILL), stderr.read_text()
    return code


def outputs(folder: Path) -> list[str]:
    """The files under ``folder`` (relative), less the temporaries a killed writer left."""
    found = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    left = [f for f in found if Path(f).name.startswith(".")]
    assert all(".part" in Path(f).name for f in left), left
    return [f for f in found if f not in left]


def assert_same_predictions(expected: Path, got: Path) -> None:
    """Two prediction folders hold the same files with the same values."""
    names = outputs(expected)
    assert outputs(got) == names
    for name in names:
        if name.endswith(".tif"):
            with rasterio.open(expected / name) as a, rasterio.open(got / name) as b:
                assert (a.profile, a.transform, a.crs) == (b.profile, b.transform, b.crs)
                np.testing.assert_array_equal(b.read(), a.read(), err_msg=name)
        elif name.endswith(".gpkg"):
            a, b = gpd.read_file(expected / name), gpd.read_file(got / name)
            assert a.crs == b.crs and list(a.columns) == list(b.columns), name
            pd.testing.assert_frame_equal(pd.DataFrame(b.drop(columns="geometry")),
                                          pd.DataFrame(a.drop(columns="geometry")))
            assert list(b.geometry.to_wkb()) == list(a.geometry.to_wkb()), name
        elif name.endswith("seconds.json"):  # times differ; the images timed must not
            assert json.loads((got / name).read_text()).keys() == \
                json.loads((expected / name).read_text()).keys()
        else:
            assert (got / name).read_bytes() == (expected / name).read_bytes(), name


def work_seconds(prediction: Path) -> float:
    """How long the images of a prediction folder took (its recorded times)."""
    return sum(json.loads((prediction / "seconds.json").read_text()).values())


# --- predict ---------------------------------------------------------------------------

def test_predict_killed_then_rerun_equals_an_uninterrupted_run(tmp_path: Path,
                                                               one_thread: None) -> None:
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        blocks = rng.integers(0, 256, (3, 20, 20)).astype(np.uint8)
        write_raster(images / f"ortho_{i}.tif", np.kron(blocks, np.ones((8, 8), np.uint8)))
    run_dir = unet_run(tmp_path / "unet_small")
    straight, out = tmp_path / "straight", tmp_path / "killed"
    assert cli.main(["predict", str(run_dir), str(images), str(straight)]) == 0
    argv = ["predict", str(run_dir), str(images), str(out)]
    kill_at_random_moment(argv, out / "predict.json", work_seconds(straight), seed=17,
                          stderr=tmp_path / "stderr.txt")
    assert cli.main(argv) == 0
    assert_same_predictions(straight, out)


# --- finetune --------------------------------------------------------------------------

@pytest.fixture
def data_dir(smoke_data_dir: Path, tmp_path: Path) -> Path:
    """A data folder of its own (runs/, reports/) over the smoke data's prepared stages."""
    data = tmp_path / "data"
    data.mkdir()
    for name in ("raw", "chips", "masks", "splits.csv"):
        (data / name).symlink_to(smoke_data_dir / name)
    return data


def test_finetune_killed_then_resumed_equals_an_uninterrupted_run(
        data_dir: Path, tmp_path: Path, one_thread: None,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # here the final validation only costs time (the subprocess runs the real one)
    monkeypatch.setattr(loop, "validation_row", fake_validation_row)
    config = tmp_path / "unet.yaml"
    config.write_text("profile: smoke\naois: [AOI_2_Vegas]\nmodel: unet\nsteps: 8\n"
                      "checkpoint_every: 1\nval_every: 1000\n")
    argv = ["finetune", str(config), "--data", str(data_dir), "--name"]
    assert cli.main([*argv, "straight"]) == 0
    straight = stage_paths(data_dir).runs / "straight"
    train_seconds = float(read_metrics(straight)[-2]["seconds"])  # the last train row
    run_dir = stage_paths(data_dir).runs / "killed"
    code = kill_at_random_moment([*argv, "killed"], run_dir / runs.RUN_FILE, train_seconds,
                                 seed=4, stderr=tmp_path / "stderr.txt")
    if code != 0:
        assert cli.main(["finetune", "--resume", str(run_dir), "--data", str(data_dir)]) == 0
    assert_same_weights(final_weights(run_dir), final_weights(straight))
    assert_same_weights(checkpoint_weights(run_dir), checkpoint_weights(straight))
    losses = [[r["loss"] for r in read_metrics(folder) if r["split"] == "train"]
              for folder in (straight, run_dir)]
    assert losses[1] == losses[0] and len(losses[0]) == 8


# --- evaluate --------------------------------------------------------------------------

SCORES = ["model", "f1_AOI_2_Vegas"]


def test_evaluate_killed_then_rerun_equals_an_uninterrupted_run(
        data_dir: Path, tmp_path: Path, one_thread: None) -> None:
    run_dir = unet_run(tmp_path / "unet_small")
    argv = ["evaluate", str(run_dir), "--data", str(data_dir), "--split", "val",
            "--aoi", "vegas", "--name"]
    reports = stage_paths(data_dir).reports
    assert cli.main([*argv, "straight"]) == 0
    straight, killed = reports / "straight", reports / "killed"
    predictions = Path("unet_small") / "predictions"
    kill_at_random_moment([*argv, "killed"], killed / predictions / "predict.json",
                          work_seconds(straight / predictions), seed=23,
                          stderr=tmp_path / "stderr.txt")
    assert cli.main([*argv, "killed"]) == 0
    assert_same_predictions(straight / predictions, killed / predictions)
    for name in ("unet_small/per_image.csv", "unet_small/per_aoi.json"):
        assert (killed / name).read_bytes() == (straight / name).read_bytes(), name
    summary = [pd.read_csv(folder / "summary.csv") for folder in (straight, killed)]
    assert set(SCORES) <= set(summary[0].columns)
    pd.testing.assert_frame_equal(summary[1][SCORES], summary[0][SCORES])


def test_evaluate_refuses_an_image_without_data_before_any_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before the tiles were checked")

    monkeypatch.setattr(per_city, "load_run_model", refuse)
    monkeypatch.setattr(per_city, "load_sam2", refuse)
    tile = tmp_path / "RGB-PanSharpen_AOI_2_Vegas_img9.tif"
    write_raster(tile, np.full((3, 64, 64), np.nan, np.float32))
    data = tmp_path / "data"
    data.mkdir()
    pd.DataFrame({"aoi": ["AOI_2_Vegas"], "image_id": ["AOI_2_Vegas_img9"],
                  "source": [str(tile)], "split": ["val"], "block": ["AOI_2_Vegas:b0_0"]}
                 ).to_csv(data / "splits.csv", index=False)
    run_dir = unet_run(tmp_path / "unet_small")
    assert cli.main(["evaluate", str(run_dir), "sam2-auto", "--data", str(data),
                     "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines() == [f"aerialsam evaluate: error: {tile}: bands 1, 2, 3 hold only "
                                "nodata (the nodata value, NaN or infinity): nothing to predict"]
