"""``aerialsam score``: the official sample scores, the JSON contract, per-image CSV, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from aerialsam.cli import main

HEADER = "ImageId,BuildingId,PolygonWKT_Pix,Confidence\n"


@pytest.fixture()
def sample(samples_dir: Path) -> tuple[Path, Path]:
    folder = samples_dir / "sn2_truth_csv"
    return folder / "SN2_sample_truth.csv", folder / "SN2_sample_preds.csv"


def test_json_reproduces_expected_scores(sample: tuple[Path, Path], samples_dir: Path,
                                         capsys: pytest.CaptureFixture) -> None:
    assert main(["score", str(sample[0]), str(sample[1]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"per_aoi", "overall_f1"}
    expected = pd.read_csv(samples_dir / "sn2_truth_csv" / "SN2_sample_expected_scores.csv")
    for row in expected.itertuples():
        got = doc["per_aoi"][row.AOI]
        assert list(got) == ["tp", "fp", "fn", "precision", "recall", "f1"]
        assert (got["tp"], got["fp"], got["fn"]) == (row.TruePos, row.FalsePos, row.FalseNeg)
        assert got["precision"] == pytest.approx(row.Precision, abs=1e-15)
        assert got["recall"] == pytest.approx(row.Recall, abs=1e-15)
        assert got["f1"] == pytest.approx(row.F1Score, abs=1e-15)
    assert doc["overall_f1"] == pytest.approx((0.8860759493670887 + 0.4444444444444444) / 2)


def test_table_and_per_image_csv(sample: tuple[Path, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "reports" / "per_image.csv"
    assert main(["score", str(sample[0]), str(sample[1]), "--per-image", str(out)]) == 0
    text = capsys.readouterr().out
    assert "AOI_2_Vegas" in text and "0.886076" in text and "0.444444" in text
    assert "overall (mean AOI F1)" in text and "0.665260" in text
    per_image = pd.read_csv(out)
    assert list(per_image.columns) == ["image_id", "aoi", "tp", "fp", "fn", "precision",
                                       "recall", "f1"]
    assert per_image.groupby("aoi")["fp"].sum().to_dict() == {"AOI_2_Vegas": 2,
                                                              "AOI_5_Khartoum": 55}


def test_empty_proposals_give_f1_zero(sample: tuple[Path, Path], tmp_path: Path,
                                      capsys: pytest.CaptureFixture) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text(HEADER)
    assert main(["score", str(sample[0]), str(empty), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["overall_f1"] == 0.0
    assert doc["per_aoi"]["AOI_2_Vegas"]["fn"] == 42  # 35 TP + 7 FN in the official score


@pytest.mark.parametrize(("body", "message"), [
    ("ImageId,BuildingId,Confidence\nAOI_2_Vegas_img1,0,1\n", "missing column 'PolygonWKT_Pix'"),
    (HEADER + 'AOI_2_Vegas_img1,0,"POLYGON ((0 0,9 0,9 9,0 0))",1\n'
              'AOI_2_Vegas_img1,1,"POLYGON ((0 0,9",1\n', "line 3: unparsable WKT"),
    (HEADER + 'AOI_2_Vegas_img1,0,"POLYGON ((0 0,9 0,9 9,0 0))",sure\n',
     "line 2: non-numeric Confidence 'sure'"),
    (HEADER + 'AOI_2_Vegas_img1,0,"POLYGON ((0 0,9 0,9 9,0 0))",1\n'
              'tile7,0,"POLYGON ((0 0,9 0,9 9,0 0))",1\n', "line 3: ImageId 'tile7'"),
])
def test_malformed_proposals_fail_in_one_line(sample: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture, body: str,
                                              message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(body)
    assert main(["score", str(sample[0]), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(bad) in err and message in err


def test_missing_truth_file(tmp_path: Path, sample: tuple[Path, Path],
                            capsys: pytest.CaptureFixture) -> None:
    assert main(["score", str(tmp_path / "nope.csv"), str(sample[1])]) == 2
    err = capsys.readouterr().err
    assert "nope.csv" in err and "file not found" in err


ROAD_HEADER = "ImageId,WKT_Pix\n"


@pytest.fixture()
def roads(samples_dir: Path) -> tuple[Path, Path]:
    folder = samples_dir / "sn3_roads"
    return folder / "truth_AOI_2_Vegas_img0.csv", folder / "proposals_albu_AOI_2_Vegas_img0.csv"


def test_roads_json_matches_official_scorer(roads: tuple[Path, Path],
                                            capsys: pytest.CaptureFixture) -> None:
    assert main(["score", str(roads[0]), str(roads[1]), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == ["per_aoi", "overall_apls"]
    assert list(doc["per_aoi"]) == ["AOI_2_Vegas"]
    assert list(doc["per_aoi"]["AOI_2_Vegas"]) == ["apls", "images"]
    assert doc["per_aoi"]["AOI_2_Vegas"]["images"] == 1
    assert doc["per_aoi"]["AOI_2_Vegas"]["apls"] == pytest.approx(0.7864711834595011, abs=1e-12)
    assert doc["overall_apls"] == pytest.approx(0.7864711834595011, abs=1e-12)


def test_roads_table_and_per_image_csv(roads: tuple[Path, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "reports" / "roads.csv"
    assert main(["score", str(roads[0]), str(roads[1]), "--per-image", str(out)]) == 0
    text = capsys.readouterr().out
    assert "AOI_2_Vegas" in text and "overall (mean AOI APLS)" in text
    assert text.count("0.786471") == 2
    per_image = pd.read_csv(out)
    assert list(per_image.columns) == ["image_id", "aoi", "apls", "gt_to_prop", "prop_to_gt"]
    row = per_image.iloc[0]
    assert (row.image_id, row.aoi) == ("AOI_2_Vegas_img0", "AOI_2_Vegas")
    assert row.gt_to_prop == pytest.approx(0.8026764332623351, abs=1e-12)
    assert row.prop_to_gt == pytest.approx(0.7709073208719465, abs=1e-12)
    assert not list(out.parent.glob(".*"))  # written through a temporary name, renamed


@pytest.mark.parametrize(("rows", "message"), [
    (['"LINESTRING (0 0, 10 0)"', '"LINESTRING (10 0, 0 0)"'], "line 3: image AOI_2_Vegas_img0: "
                                                               "duplicate section"),
    (['"LINESTRING (0 0, 0 0.001, 10 0)"'], "line 2: image AOI_2_Vegas_img0: zero-length section"),
    (['"LINESTRING (7 7)"'], "line 2: image AOI_2_Vegas_img0: lone point"),
    (["LINESTRING EMPTY", '"LINESTRING (0 0, 10 0)"'], "image AOI_2_Vegas_img0: LINESTRING EMPTY "
                                                       "beside other rows"),
    (['"LINESTRING (0 0, 10 0"'], "line 2: image AOI_2_Vegas_img0: unparsable WKT"),
    (['"POLYGON ((0 0, 9 0, 9 9, 0 0))"'], "image AOI_2_Vegas_img0: expected a LINESTRING, found "
                                           "POLYGON"),
])
def test_roads_refusals_exit_2_in_one_line(roads: tuple[Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture, rows: list[str],
                                           message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(ROAD_HEADER + "".join(f"AOI_2_Vegas_img0,{row}\n" for row in rows))
    assert main(["score", str(roads[0]), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(bad) in err and message in err
    assert main(["score", str(bad), str(roads[1])]) == 2  # the same refusal in the truth
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and message in err


@pytest.mark.parametrize(("header", "message"), [
    ("ImageId,BuildingId,PolygonWKT_Pix,WKT_Pix\n", "mixes buildings (PolygonWKT_Pix) and roads "
                                                    "(WKT_Pix)"),
    ("ImageId,Geometry\n", "has neither PolygonWKT_Pix (buildings) nor WKT_Pix (roads)"),
])
def test_truth_header_must_name_one_kind(roads: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture, header: str,
                                         message: str) -> None:
    bad = tmp_path / "truth.csv"
    bad.write_text(header)
    assert main(["score", str(bad), str(roads[1])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and message in err


def test_road_proposals_against_building_header(roads: tuple[Path, Path], sample: tuple[Path, Path],
                                                capsys: pytest.CaptureFixture) -> None:
    assert main(["score", str(roads[0]), str(sample[1])]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(sample[1]) in err and "has building polygons (PolygonWKT_Pix), not roads" in err


def test_roads_workers_must_be_positive(roads: tuple[Path, Path],
                                        capsys: pytest.CaptureFixture) -> None:
    assert main(["score", str(roads[0]), str(roads[1]), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--workers: must be at least 1" in err


@pytest.mark.parametrize(("encoding", "message"), [
    ("latin-1", "not UTF-8 text: byte 0xe9 at byte offset"),
    ("utf-16-le", "NUL byte at byte offset 1"),
])
def test_proposals_in_another_encoding_fail_in_one_line(sample: tuple[Path, Path],
                                                        tmp_path: Path, capsys, encoding: str,
                                                        message: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes((HEADER + 'AOI_2_Vegas_img1,0,"POLYGON ((0 0,9 0,9 9,0 0))",1\n'
                     "# Café\n").encode(encoding))
    assert main(["score", str(sample[0]), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and message in err[0]


def test_proposals_saved_as_marked_utf16_are_scored(sample: tuple[Path, Path], tmp_path: Path,
                                                    capsys) -> None:
    marked = tmp_path / "utf16.csv"
    marked.write_bytes(sample[1].read_text().encode("utf-16"))
    assert main(["score", str(sample[0]), str(marked), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["overall_f1"] == pytest.approx((0.8860759493670887 + 0.4444444444444444) / 2)
