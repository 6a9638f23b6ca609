"""``aerialsam finetune``: a whole U-Net run through the command line, then ``predict`` with
it; every refusal is exit status 2 and one line naming the file or folder."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import rasterio
import torch

from aerialsam import cli
from aerialsam.config import stage_paths
from aerialsam.training import loop, runs
from aerialsam.training.train_config import make_config
from tests.training_helpers import (
    assert_same_weights,
    fake_validation_row,
    final_weights,
    read_metrics,
)

# the smoke profile cut to Vegas (one validation tile keeps the final tile F1 quick)
VEGAS_UNET = "profile: smoke\naois: [AOI_2_Vegas]\nmodel: unet\n"


@pytest.fixture(scope="module")
def data_dir(smoke_data_dir: Path) -> Path:
    return smoke_data_dir


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("finetune") / "vegas_unet.yaml"
    path.write_text(VEGAS_UNET)
    return path


@pytest.fixture(scope="module")
def finished_run(data_dir: Path, config_file: Path) -> tuple[Path, str]:
    """Run ``finetune`` once; return the run folder and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = cli.main(["finetune", str(config_file), "--data", str(data_dir),
                           "--steps", "2"])
    assert status == 0
    return stage_paths(data_dir).runs / "unet_small", printed.getvalue()


def error_lines(capsys: pytest.CaptureFixture) -> list[str]:
    """What the command printed on stderr, less log records."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines()
            if not line.startswith(("WARNING ", "INFO ", "DEBUG "))]


def test_run_prints_its_folder_and_writes_the_layout(finished_run: tuple[Path, str]) -> None:
    run_dir, printed = finished_run
    assert printed.strip() == str(run_dir)
    run = json.loads((run_dir / runs.RUN_FILE).read_text())
    assert run["config"]["model"] == "unet" and run["config"]["steps"] == 2
    assert run["config"]["aois"] == ["AOI_2_Vegas"]
    assert run["step"] == 2 and (run["chip_size"], run["overlap"]) == (256, 32)
    assert set(run["metrics"]) == {"val_loss", "val_pixel_iou", "val_f1", "threshold"}
    assert run["threshold"] in (0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.8)
    assert run["metrics"]["threshold"] == run["threshold"] and run["oracle"] is False
    assert 0.0 <= run["metrics"]["val_f1"] <= 1.0 and run["metrics"]["val_loss"] > 0
    assert len(run["f1_per_threshold"]) == 7
    assert (run_dir / runs.MODEL_FILE).stat().st_size > 0
    assert sorted(p.name for p in (run_dir / runs.CHECKPOINTS).iterdir()) == [
        "last.pt", "step_000002.pt"]
    rows = read_metrics(run_dir)
    assert [(r["step"], r["split"]) for r in rows] == [("1", "train"), ("2", "train"),
                                                       ("2", "val")]
    assert rows[-1]["f1"] != "" and float(rows[-1]["threshold"]) == run["threshold"]
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))


def test_predict_with_the_run(finished_run: tuple[Path, str], data_dir: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture) -> None:
    run_dir, _ = finished_run
    # an AOI folder in the SpaceNet layout, with one of the Vegas tiles (to keep it quick)
    tile = "RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img1.tif"
    aoi = tmp_path / "AOI_2_Vegas_Train"
    (aoi / tile).parent.mkdir(parents=True)
    shutil.copy(stage_paths(data_dir).raw / "AOI_2_Vegas_Train" / tile, aoi / tile)
    out = tmp_path / "pred"
    assert cli.main(["predict", str(run_dir), str(aoi), str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out / "proposals.csv")
    proposals = pd.read_csv(out / "proposals.csv")
    assert {"ImageId", "BuildingId", "PolygonWKT_Pix", "Confidence"} <= set(proposals.columns)
    assert set(proposals["ImageId"]) <= {"AOI_2_Vegas_img1"}
    with rasterio.open(aoi / tile) as src, \
            rasterio.open(out / "prob" / "AOI_2_Vegas_img1.tif") as prob:
        assert (prob.width, prob.height) == (src.width, src.height)
        assert prob.transform == src.transform
    params = json.loads((out / "predict.json").read_text())
    assert (params["model"], params["mode"], params["step"]) == (str(run_dir.resolve()),
                                                                 "dense", 2)


def test_starting_over_an_existing_run_is_refused(finished_run: tuple[Path, str],
                                                  data_dir: Path, config_file: Path,
                                                  capsys: pytest.CaptureFixture) -> None:
    run_dir, _ = finished_run
    argv = ["finetune", str(config_file), "--data", str(data_dir), "--steps", "2"]
    assert cli.main(argv) == 2
    assert error_lines(capsys) == [f"aerialsam finetune: error: {run_dir}: holds a run "
                                   "already; resume it (--resume) or choose another name"]


def test_profile_name_prepares_data_then_refuses_a_taken_name(
        data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    taken = stage_paths(data_dir).runs / "taken"
    runs.write_run_json(taken, make_config({"model": "unet"}))
    argv = ["finetune", "smoke", "--data", str(data_dir), "--model", "unet", "--steps", "2",
            "--name", "taken"]
    assert cli.main(argv) == 2
    [line] = error_lines(capsys)
    assert line.startswith(f"aerialsam finetune: error: {taken}: holds a run already")


def test_unknown_config_key(tmp_path: Path, data_dir: Path,
                            capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("profile: smoke\nmodel: unet\nlearning_rate: 0.1\n")
    assert cli.main(["finetune", str(path), "--data", str(data_dir)]) == 2
    [line] = error_lines(capsys)
    assert line.startswith(f"aerialsam finetune: error: {path}: unknown key(s) "
                           "['learning_rate']")


def test_resume_without_run_json(tmp_path: Path, data_dir: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    assert cli.main(["finetune", "--resume", str(empty), "--data", str(data_dir)]) == 2
    assert error_lines(capsys) == [f"aerialsam finetune: error: {empty}: not a fine-tuning "
                                   "run folder (no run.json)"]


def test_resume_with_new_settings(finished_run: tuple[Path, str], data_dir: Path,
                                  capsys: pytest.CaptureFixture) -> None:
    run_dir, _ = finished_run
    argv = ["finetune", "--resume", str(run_dir), "--data", str(data_dir), "--steps", "5"]
    assert cli.main(argv) == 2
    [line] = error_lines(capsys)
    assert line.startswith("aerialsam finetune: error: --resume: a resumed run keeps its saved")


def test_missing_config_and_missing_data(tmp_path: Path, config_file: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["finetune", "--data", str(tmp_path)]) == 2
    [line] = error_lines(capsys)
    assert line.startswith("aerialsam finetune: error: CONFIG_OR_PROFILE: give a profile")
    assert cli.main(["finetune", str(config_file), "--data", str(tmp_path)]) == 2
    [line] = error_lines(capsys)
    assert line.startswith(f"aerialsam finetune: error: {tmp_path / 'chips'}: not found")


# --- faults: a full disk, a run that died before its first last.pt -----------------------

def fill_disk_at_save(monkeypatch: pytest.MonkeyPatch, call: int,
                      as_torch: bool = False) -> list[str]:
    """Make the ``call``-th ``torch.save`` (1-based) fail as a full disk does, after writing
    a few bytes; return the list of saves attempted (their targets' names).

    ``as_torch``: fail as torch's writer does on a real full disk, with a ``RuntimeError``
    whose context is the ``OSError(ENOSPC)`` of the write.
    """
    original = torch.save
    attempts: list[str] = []

    def save(obj: object, target: object, *args: object, **kwargs: object) -> None:
        attempts.append(getattr(target, "name", str(target)))
        if len(attempts) == call:
            target.write(b"PK\x03\x04 half a checkpoint")
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError:
                if as_torch:
                    raise RuntimeError("[enforce fail at inline_container.cc:672] . "
                                       "unexpected pos 768 vs 662") from None
                raise
        original(obj, target, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    return attempts


@pytest.mark.parametrize(("call", "as_torch", "failing", "resume_from"), [
    (1, False, "checkpoints/step_000002.pt", None),  # nothing saved: resume starts at step 0
    (2, False, "checkpoints/last.pt", "checkpoints/step_000002.pt"),  # step file, no last.pt
    (2, True, "checkpoints/last.pt", "checkpoints/step_000002.pt"),
    (3, False, "model.pt", "checkpoints/step_000002.pt"),  # the final model, in _finish
    (3, True, "model.pt", "checkpoints/step_000002.pt"),
])
def test_full_disk_is_one_line_and_resume_finishes_the_run(
        call: int, as_torch: bool, failing: str, resume_from: str | None,
        finished_run: tuple[Path, str],
        data_dir: Path, config_file: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(loop, "validation_row", fake_validation_row)  # weights only here
    name = f"disk_full_{call}_{as_torch}"
    run_dir = stage_paths(data_dir).runs / name
    argv = ["finetune", str(config_file), "--data", str(data_dir), "--steps", "2",
            "--name", name]
    with monkeypatch.context() as patch:
        fill_disk_at_save(patch, call, as_torch)
        assert cli.main(argv) == 2
    resume = (f"continues from the last good checkpoint, {run_dir / resume_from}" if resume_from
              else "starts it again from step 0 (no checkpoint was saved yet)")
    assert error_lines(capsys) == [
        f"aerialsam finetune: error: {run_dir}: the disk is full while writing "
        f"{run_dir / failing}; free some space, then `aerialsam finetune --resume {run_dir}` "
        f"{resume}"]
    assert not (run_dir / runs.MODEL_FILE).exists()
    # no half-written file is left, under its own name or a temporary one
    left = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*.pt"))
    assert [p for p in left if "part" in p] == []
    capsys.readouterr()
    assert cli.main(["finetune", "--resume", str(run_dir), "--data", str(data_dir)]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir)
    assert_same_weights(final_weights(run_dir), final_weights(finished_run[0]))
    assert [r["loss"] for r in read_metrics(run_dir) if r["split"] == "train"] == \
        [r["loss"] for r in read_metrics(finished_run[0]) if r["split"] == "train"]

