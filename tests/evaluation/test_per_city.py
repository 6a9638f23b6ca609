"""Per-city evaluation: ``evaluate`` on a tiny prepared dataset, its tables and error
analysis, the browser's scoring, and one-line errors of ``aerialsam evaluate``.

One synthetic city (Paris, three tiles: one to train, two held out as ``val``), a U-Net
trained for 2 steps and zero-shot SAM 2.1 tiny at 128 px with random weights (the oracle).
Random and 2-step weights make the scores meaningless: the tests check the bookkeeping.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import box

from aerialsam import cli
from aerialsam.book import studies
from aerialsam.config import load_profile, stage_paths
from aerialsam.data import spacenet
from aerialsam.errors import InputError
from aerialsam.evaluation import analysis
from aerialsam.evaluation.per_city import ORACLE_NOTE, ZeroShot, evaluate, held_out
from aerialsam.metrics.building_f1 import score
from aerialsam.prep.stretch import STRETCH_FILE, load_stretches
from aerialsam.training.datasets import prepare_training_data
from aerialsam.training.loop import TrainData, train
from aerialsam.training.runs import MODEL_FILE, RUN_FILE, write_run_json
from aerialsam.training.train_config import from_profile
from aerialsam.training.validation import truth_of
from aerialsam.viz import results, widgets

pytestmark = pytest.mark.filterwarnings("ignore:.*torch.jit.script:FutureWarning")
CITY = "AOI_3_Paris"


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smoke data folder of one city: raw tiles, chips, masks and splits."""
    root = tmp_path_factory.mktemp("eval-data")
    profile = load_profile("smoke", aois=(CITY,))
    _, _, splits_path = prepare_training_data(profile, root)
    splits = pd.read_csv(splits_path)
    assert {"train", "val"} <= set(splits["split"])
    return root


@pytest.fixture(scope="module")
def unet_run(data: Path) -> Path:
    """A finished 2-step U-Net run on the city's training tile."""
    profile = load_profile("smoke", aois=(CITY,))
    config = from_profile(profile, model="unet", steps=2, name="unet_tiny")
    paths = stage_paths(data)
    run_dir = paths.runs / "unet_tiny"
    train(config, TrainData(paths.chips, paths.masks, paths.splits), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def report(data: Path, unet_run: Path) -> tuple[Path, pd.DataFrame]:
    """The evaluation folder and summary of the U-Net and the SAM 2 oracle (128 px)."""
    paths = stage_paths(data)
    out = paths.reports / "test"
    summary = evaluate([str(unet_run), "sam2-oracle"], paths.splits, out, "val",
                       zero_shot=ZeroShot("tiny", "random", 128, device="cpu"),
                       stretch_path=paths.chips / STRETCH_FILE, overlap=32, batch_size=2)
    return out, summary


def test_summary_rows_and_columns(report: tuple[Path, pd.DataFrame]) -> None:
    out, summary = report
    assert list(summary.columns) == ["model", f"f1_{CITY}", "overall_f1", "precision", "recall",
                                     "tiles", "seconds", "images_per_s", "note"]
    assert summary["model"].tolist() == ["unet_tiny", "sam2-oracle"]
    assert summary["note"].fillna("").tolist() == ["", ORACLE_NOTE]
    assert summary["tiles"].tolist() == [2, 2]
    assert (summary["seconds"] > 0).all()
    assert np.allclose(summary["images_per_s"], summary["tiles"] / summary["seconds"])
    # one city: the overall F1 is that city's F1
    assert np.allclose(summary["overall_f1"], summary[f"f1_{CITY}"])
    on_disk = pd.read_csv(out / "summary.csv")
    assert on_disk["model"].tolist() == summary["model"].tolist()
    assert np.allclose(on_disk["overall_f1"], summary["overall_f1"])


def test_per_aoi_json_and_per_image_agree(data: Path, report: tuple[Path, pd.DataFrame]) -> None:
    out, summary = report
    sources = held_out(stage_paths(data).splits, "val")
    truth = truth_of(sources)
    kept = int((truth.geometry.area >= 20).sum())
    for label in ("unet_tiny", "sam2-oracle"):
        document = json.loads((out / label / "per_aoi.json").read_text())
        assert set(document) == {"per_aoi", "overall_f1"}
        counts = document["per_aoi"][CITY]
        assert set(counts) == {"tp", "fp", "fn", "precision", "recall", "f1"}
        assert counts["tp"] + counts["fn"] == kept  # every held-out building is counted once
        row = summary.set_index("model").loc[label]
        assert document["overall_f1"] == pytest.approx(row["overall_f1"])
        per_image = pd.read_csv(out / label / "per_image.csv")
        assert sorted(per_image["image_id"]) == sorted(s.image_id for s in sources)
        assert per_image["tp"].sum() == counts["tp"] and per_image["fp"].sum() == counts["fp"]
        proposals = out / label / "predictions" / "proposals.csv"
        assert proposals.is_file()


def test_a_rerun_reports_the_speed_of_the_prediction_not_of_skipping(
        data: Path, unet_run: Path, report: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    out, summary = report
    copy = tmp_path / "again"
    shutil.copytree(out, copy)
    paths = stage_paths(data)

    def rerun() -> pd.DataFrame:
        return evaluate([str(unet_run)], paths.splits, copy, "val",
                        stretch_path=paths.chips / STRETCH_FILE, overlap=32, batch_size=2)

    again = rerun()  # every tile is already predicted: nothing runs
    assert again.loc[0, "seconds"] == pytest.approx(summary.loc[0, "seconds"])
    assert again.loc[0, "overall_f1"] == summary.loc[0, "overall_f1"]
    (copy / "unet_tiny" / "predictions" / "seconds.json").unlink()
    unknown = rerun()  # predictions from before times were kept: speed unknown, not invented
    assert np.isnan(unknown.loc[0, "seconds"]) and np.isnan(unknown.loc[0, "images_per_s"])
    (copy / "unet_tiny" / "predictions" / "seconds.json").write_text("[1, 2]")
    with pytest.raises(InputError, match=r"seconds\.json: not a JSON object of seconds"):
        rerun()


def test_headline_table_adds_the_2017_rows(unet_run: Path,
                                          report: tuple[Path, pd.DataFrame]) -> None:
    _, summary = report
    names = analysis.model_names([str(unet_run), "sam2-oracle"])
    assert names == {"unet_tiny": "U-Net (unet_tiny)",
                     "sam2-oracle": "SAM 2 + true boxes (ORACLE: upper bound)"}
    table = analysis.headline_table(summary, names, "val")
    assert list(table.columns) == ["Las Vegas", "Paris", "Shanghai", "Khartoum", "overall",
                                   "precision", "recall", "images/s", "scored on"]
    assert table.loc["2017: XD_XD (1st)", ["Las Vegas", "Paris", "Shanghai", "Khartoum",
                                          "overall"]].tolist() == [0.885, 0.745, 0.597, 0.544,
                                                                   0.688]
    assert table.loc["2017: nofto (3rd)", "overall"] == 0.579
    assert table.loc["2017: wleite (2nd)", "scored on"] == analysis.SCORED_2017
    assert table.loc["U-Net (unet_tiny)", "scored on"] == "val tiles here"
    assert np.isnan(table.loc["U-Net (unet_tiny)", "Las Vegas"])  # not evaluated there
    html = results.show_headline(table, "val").to_html()
    assert "nan" not in html.lower() and "—" in html and "0.885" in html
    assert "this run's val tiles" in html and "own test set" in html
    assert analysis.SCORED_2017 not in html  # said once, in the caption
    assert analysis.best_honest(summary) == "unet_tiny"


def test_error_analysis_counts_every_polygon(data: Path, unet_run: Path,
                                             report: tuple[Path, pd.DataFrame]) -> None:
    out, _ = report
    result = analysis.load_result(out, str(unet_run), stage_paths(data).splits, "val")
    by_size = analysis.f1_by_size(result)
    truth = result.truth[result.truth["status"] != "dropped"]
    assert by_size["tp"].sum() == (truth["status"] == "matched").sum()
    assert by_size["fn"].sum() == (truth["status"] == "missed").sum()
    assert by_size["fp"].sum() == (result.proposals["status"] == "false").sum()
    merged = analysis.merged_buildings(result)
    assert merged.loc["Paris", "buildings"] == len(truth)
    assert merged.loc["Paris", "proposals"] == (result.proposals["status"] != "dropped").sum()


def _scored(truth: list, proposals: list) -> object:
    frame = lambda geoms: gpd.GeoDataFrame(  # noqa: E731
        {"ImageId": "AOI_3_Paris_img1", "Confidence": np.ones(len(geoms))}, geometry=geoms)
    return score(frame(truth), frame(proposals))


def test_merged_buildings_and_size_bins_on_known_polygons() -> None:
    # two touching 10 x 10 buildings under one 20 x 10 proposal, and a lone 30 x 30 building
    # matched exactly: the proposal merges two buildings, both missed
    result = _scored([box(0, 0, 10, 10), box(10, 0, 20, 10), box(50, 50, 80, 80)],
                     [box(0, 0, 20, 10), box(50, 50, 80, 80)])
    merged = analysis.merged_buildings(result)
    assert merged.loc["Paris"].to_dict() == {"proposals": 2, "merging": 1,
                                             "buildings_merged": 2, "buildings": 3}
    sizes = analysis.f1_by_size(result)
    # the 200 px² proposal has IoU 0.5 with each building (not above): a false positive
    assert sizes.loc["100-250"].to_dict() == {"tp": 0, "fn": 2, "fp": 1, "f1": 0.0}
    assert sizes.loc["500-1000"].to_dict() == {"tp": 1, "fn": 0, "fp": 0, "f1": 1.0}
    assert sizes.loc["20-100", ["tp", "fn", "fp"]].tolist() == [0, 0, 0]
    assert np.isnan(sizes.loc["20-100", "f1"])
    assert analysis.worst_tiles(result) == ["AOI_3_Paris_img1"]


def test_cross_city_matrix_reads_each_summary() -> None:
    summaries = {a: pd.DataFrame([{"model": f"unet_{a}", "f1_AOI_3_Paris": p,
                                   "f1_AOI_4_Shanghai": s}])
                 for a, p, s in (("AOI_3_Paris", 0.6, 0.2), ("AOI_4_Shanghai", 0.1, 0.5))}
    matrix = analysis.cross_city_matrix(summaries)
    assert matrix.to_dict() == {"Paris": {"Paris": 0.6, "Shanghai": 0.1},
                                "Shanghai": {"Paris": 0.2, "Shanghai": 0.5}}
    assert matrix.index.name == "trained on" and matrix.columns.name == "tested on"


def test_browser_scores_a_tile_as_the_evaluation_did(data: Path,
                                                      report: tuple[Path, pd.DataFrame]) -> None:
    out, _ = report
    paths = stage_paths(data)
    models = analysis.browsed_models(out, {"unet_tiny": "U-Net"})
    tiles = studies.tiles_by_id(paths.raw)
    per_image = pd.read_csv(out / "unet_tiny" / "per_image.csv").set_index("image_id")
    model = models["U-Net"]
    run_threshold = json.loads((paths.runs / "unet_tiny" / RUN_FILE).read_text())["threshold"]
    assert model.threshold == run_threshold
    for image in per_image.index:
        result = analysis.tile_result(model, tiles[image], model.threshold)
        row = result.per_image.iloc[0]
        assert (row.tp, row.fp, row.fn) == tuple(per_image.loc[image, ["tp", "fp", "fn"]])
    data_ = widgets.BrowserData(tiles, load_stretches(paths.chips / STRETCH_FILE), models,
                                list(per_image.index))
    fig = widgets.static_view(data_, per_image.index[0], thresholds=(0.4, 0.6))
    assert len(fig.axes) == 2


def test_live_session_is_off_in_a_batch_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(widgets.FORCE_ENV, raising=False)
    assert not widgets.live_session()  # no IPython kernel under pytest
    monkeypatch.setenv(widgets.FORCE_ENV, "1")
    assert widgets.live_session()


def test_eval_split_of_the_profiles() -> None:
    assert studies.eval_split(load_profile("smoke")) == "val"
    assert studies.eval_split(load_profile("demo")) == "test"


def _error_lines(capsys: pytest.CaptureFixture) -> list[str]:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines()
            if not line.startswith(("WARNING ", "INFO ", "DEBUG "))]


def test_cli_refuses_a_run_without_model(data: Path, unet_run: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(unet_run / RUN_FILE, unfinished / RUN_FILE)
    code = cli.main(["evaluate", str(unfinished), "--data", str(data), "--split", "val"])
    lines = _error_lines(capsys)
    assert code == 2 and len(lines) == 1
    assert str(unfinished) in lines[0] and MODEL_FILE in lines[0]


def test_cli_refuses_another_image_size(data: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "sam2_run"
    run.mkdir()
    write_run_json(run, from_profile("smoke", model="sam2"))  # trained at 256 px
    code = cli.main(["evaluate", str(run), "--data", str(data), "--split", "val",
                     "--image-size", "128"])
    lines = _error_lines(capsys)
    assert code == 2 and len(lines) == 1
    assert str(run) in lines[0] and "256" in lines[0] and "128" in lines[0]


def test_cli_refuses_a_city_without_held_out_tiles(data: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["evaluate", "sam2-oracle", "--data", str(data), "--split", "test",
                     "--aoi", "paris", "--checkpoint", "random", "--image-size", "128"])
    lines = _error_lines(capsys)
    assert code == 2 and len(lines) == 1
    assert "AOI_3_Paris has no test tiles" in lines[0]


def test_held_out_names_the_tiles(data: Path) -> None:
    sources = held_out(stage_paths(data).splits, "val", ["paris"])
    assert len(sources) == 2 and {s.aoi for s in sources} == {CITY}
    assert all(spacenet.parse_image_id(s.image_id)[0] == CITY for s in sources)
