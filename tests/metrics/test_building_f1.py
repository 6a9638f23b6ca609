"""The SpaceNet 2 metric: the real oracle, each scoring rule on tiny cases, pixel scores."""

from __future__ import annotations

import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Polygon, box

from aerialsam.errors import InputError
from aerialsam.metrics import building_f1

VEGAS = "AOI_2_Vegas_img1"
PARIS = "AOI_3_Paris_img7"


def frame(rows: list[tuple], confidence: bool = True) -> gpd.GeoDataFrame:
    """A truth (image, id, geometry) or proposal (image, id, geometry, confidence) frame."""
    columns = ["ImageId", "BuildingId", "geometry"] + (["Confidence"] if confidence else [])
    return gpd.GeoDataFrame(pd.DataFrame(rows, columns=columns), geometry="geometry")


def truth(rows: list[tuple]) -> gpd.GeoDataFrame:
    return frame(rows, confidence=False)


def counts(result: building_f1.ScoreResult, aoi: str = "AOI_2_Vegas") -> tuple[int, int, int]:
    row = result.per_aoi.loc[aoi]
    return int(row.tp), int(row.fp), int(row.fn)


def test_reproduces_the_official_sample_scores(samples_dir: Path) -> None:
    folder = samples_dir / "sn2_truth_csv"
    result = building_f1.score_csv(folder / "SN2_sample_truth.csv", folder / "SN2_sample_preds.csv")
    expected = pd.read_csv(folder / "SN2_sample_expected_scores.csv").set_index("AOI")
    assert list(result.per_aoi.index) == list(expected.index)
    for aoi, row in expected.iterrows():
        got = result.per_aoi.loc[aoi]
        assert (got.tp, got.fp, got.fn) == (row.TruePos, row.FalsePos, row.FalseNeg)
        assert got.precision == pytest.approx(row.Precision, abs=1e-15)
        assert got.recall == pytest.approx(row.Recall, abs=1e-15)
        assert got.f1 == pytest.approx(row.F1Score, abs=1e-15)
    assert result.overall_f1 == pytest.approx((0.8860759493670887 + 0.4444444444444444) / 2)
    assert len(result.matches) == 35 + 52
    assert (result.matches["iou"] > 0.5).all()
    # per image sums to per AOI; the empty Khartoum image without proposals is not scored
    assert result.per_image.groupby("aoi")["tp"].sum().to_dict() == {
        "AOI_2_Vegas": 35, "AOI_5_Khartoum": 52}
    assert "AOI_5_Khartoum_img463" not in set(result.per_image["image_id"])


def test_json_shape_is_the_contract(samples_dir: Path) -> None:
    folder = samples_dir / "sn2_truth_csv"
    result = building_f1.score_csv(folder / "SN2_sample_truth.csv", folder / "SN2_sample_preds.csv")
    doc = result.to_json_dict()
    assert set(doc) == {"per_aoi", "overall_f1"}
    assert set(doc["per_aoi"]) == {"AOI_2_Vegas", "AOI_5_Khartoum"}
    vegas = doc["per_aoi"]["AOI_2_Vegas"]
    assert set(vegas) == {"tp", "fp", "fn", "precision", "recall", "f1"}
    assert (vegas["tp"], vegas["fp"], vegas["fn"]) == (35, 2, 7)
    assert type(vegas["tp"]) is int and type(vegas["f1"]) is float


def test_iou_must_be_strictly_above_half() -> None:
    t = truth([(VEGAS, 1, box(0, 0, 10, 10))])
    exactly_half = frame([(VEGAS, 1, box(0, 0, 10, 5), 1.0)])
    assert counts(building_f1.score(t, exactly_half)) == (0, 1, 1)
    above = frame([(VEGAS, 1, box(0, 0, 10, 5.1), 1.0)])
    result = building_f1.score(t, above)
    assert counts(result) == (1, 0, 0)
    assert result.matches["iou"].iloc[0] == pytest.approx(0.51)


def test_higher_confidence_takes_the_truth_first() -> None:
    t = truth([(VEGAS, 1, box(0, 0, 10, 10))])
    # the exact copy has the lower confidence, so the rough one matches and the copy is an FP
    p = frame([(VEGAS, 7, box(0, 0, 10, 10), 0.2), (VEGAS, 8, box(0, 0, 10, 8), 0.9)])
    result = building_f1.score(t, p)
    assert counts(result) == (1, 1, 0)
    assert result.matches["proposal_id"].tolist() == [8]


def test_equal_confidence_keeps_file_order() -> None:
    t = truth([(VEGAS, 1, box(0, 0, 10, 10))])
    p = frame([(VEGAS, 7, box(0, 0, 10, 8), 0.5), (VEGAS, 8, box(0, 0, 10, 10), 0.5)])
    assert building_f1.score(t, p).matches["proposal_id"].tolist() == [7]


def test_proposal_takes_the_unmatched_truth_of_highest_iou() -> None:
    t = truth([(VEGAS, 1, box(0, 0, 10, 10)), (VEGAS, 2, box(0, 2, 10, 12))])
    p = frame([(VEGAS, 1, box(0, 2, 10, 11), 0.9), (VEGAS, 2, box(0, 1, 10, 10), 0.5)])
    result = building_f1.score(t, p)
    pairs = dict(zip(result.matches["proposal_id"], result.matches["truth_id"], strict=True))
    assert pairs == {1: 2, 2: 1}  # the second proposal's best truth (2) was already taken
    assert counts(result) == (2, 0, 0)


def test_area_floor_drops_small_truth_and_proposals() -> None:
    t = truth([(VEGAS, 1, box(0, 0, 4, 4)), (VEGAS, 2, box(50, 50, 60, 60))])
    p = frame([(VEGAS, 1, box(0, 0, 4, 4.9), 1.0), (VEGAS, 2, box(50, 50, 60, 60), 1.0)])
    result = building_f1.score(t, p)
    assert counts(result) == (1, 0, 0)
    assert result.truth["status"].tolist() == ["dropped", "matched"]
    assert result.proposals["status"].tolist() == ["dropped", "matched"]


def test_sums_per_aoi_and_overall_is_mean_of_aoi_f1() -> None:
    t = truth([(VEGAS, 1, box(0, 0, 10, 10)), (PARIS, 1, box(0, 0, 10, 10)),
               (PARIS, 2, box(20, 0, 30, 10))])
    p = frame([(VEGAS, 1, box(0, 0, 10, 10), 1.0), (PARIS, 1, box(0, 0, 10, 10), 1.0)])
    result = building_f1.score(t, p)
    assert result.per_aoi.loc["AOI_2_Vegas", "f1"] == 1.0
    assert result.per_aoi.loc["AOI_3_Paris", "f1"] == pytest.approx(2 / 3)
    assert result.overall_f1 == pytest.approx((1 + 2 / 3) / 2)


def test_unknown_and_empty_images(caplog: pytest.LogCaptureFixture) -> None:
    t = truth([(VEGAS, 1, box(0, 0, 10, 10))])
    ids = [VEGAS, "AOI_2_Vegas_img2", "AOI_2_Vegas_img3"]  # img2, img3: no buildings
    p = frame([(VEGAS, 1, box(0, 0, 10, 10), 1.0), ("AOI_2_Vegas_img3", 1, box(0, 0, 9, 9), 1.0),
               ("AOI_2_Vegas_img99", 1, box(0, 0, 9, 9), 1.0)])
    with caplog.at_level(logging.WARNING, logger="aerialsam.metrics.building_f1"):
        result = building_f1.score(t, p, truth_image_ids=ids)
    assert result.unknown_images == ["AOI_2_Vegas_img99"]
    assert "AOI_2_Vegas_img99" in caplog.text
    per_image = result.per_image.set_index("image_id")
    assert "AOI_2_Vegas_img2" not in per_image.index  # neither truth nor proposals
    assert tuple(per_image.loc["AOI_2_Vegas_img3", ["tp", "fp", "fn"]]) == (0, 1, 0)
    assert tuple(per_image.loc["AOI_2_Vegas_img99", ["tp", "fp", "fn"]]) == (0, 1, 0)
    assert counts(result) == (1, 2, 0)


def test_invalid_proposals_are_repaired() -> None:
    spiked = Polygon([(0, 0), (10, 0), (10, 10), (0, 10), (0, 5), (-5, 5), (0, 5)])
    bowtie = Polygon([(20, 0), (30, 10), (30, 0), (20, 10)])
    assert not spiked.is_valid and not bowtie.is_valid
    repaired = building_f1.make_valid_polygons(np.array([spiked, bowtie], dtype=object))
    assert repaired[0].equals(box(0, 0, 10, 10))
    assert repaired[1].area == pytest.approx(50)
    t = truth([(VEGAS, 1, box(0, 0, 10, 10)), (VEGAS, 2, box(20, 0, 30, 10))])
    p = frame([(VEGAS, 1, spiked, 1.0), (VEGAS, 2, bowtie, 1.0)])
    result = building_f1.score(t, p)
    assert counts(result) == (1, 1, 1)  # the bowtie's two triangles give IoU 0.5 exactly


def test_no_proposals_gives_all_false_negatives(tmp_path: Path) -> None:
    t = truth([(VEGAS, 1, box(0, 0, 10, 10)), (VEGAS, 2, box(20, 0, 30, 10))])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text("ImageId,BuildingId,PolygonWKT_Pix,Confidence\n")
    for path in (empty, header_only):
        result = building_f1.score(t, building_f1.read_proposals_csv(path))
        assert counts(result) == (0, 0, 2)
        assert result.overall_f1 == 0.0


def test_proposal_csv_errors_name_file_and_line(tmp_path: Path) -> None:
    header = "ImageId,BuildingId,PolygonWKT_Pix,Confidence\n"
    good = f'{VEGAS},0,"POLYGON ((0 0,10 0,10 10,0 0))",0.5\n'
    bad_conf = tmp_path / "conf.csv"
    bad_conf.write_text(header + good + f'{VEGAS},1,"POLYGON ((0 0,9 0,9 9,0 0))",high\n')
    with pytest.raises(InputError, match=r"conf\.csv, line 3: non-numeric Confidence 'high'"):
        building_f1.read_proposals_csv(bad_conf)
    bad_wkt = tmp_path / "wkt.csv"
    bad_wkt.write_text(header + good + good + f'{VEGAS},2,"POLYGON ((0 0,9 0",0.5\n')
    with pytest.raises(InputError, match=r"wkt\.csv, line 4: unparsable WKT"):
        building_f1.read_proposals_csv(bad_wkt)
    no_conf = tmp_path / "noconf.csv"
    no_conf.write_text("ImageId,BuildingId,PolygonWKT_Pix\n" + good.rsplit(",", 1)[0] + "\n")
    with pytest.raises(InputError, match="missing column 'Confidence'"):
        building_f1.read_proposals_csv(no_conf)


def test_pixel_scores_per_image_and_overall() -> None:
    truth_masks = np.zeros((2, 4, 4), dtype=np.uint8)
    truth_masks[0, :2, :2] = 255
    pred = np.zeros((2, 4, 4), dtype=np.float32)
    pred[0, :2, :3] = 0.9  # 4 TP, 2 FP
    per_image, overall = building_f1.pixel_scores(pred, truth_masks > 0)
    assert per_image[["tp", "fp", "fn"]].values.tolist() == [[4, 2, 0], [0, 0, 0]]
    assert per_image["iou"].tolist() == pytest.approx([4 / 6, 1.0])
    assert per_image["f1"].tolist() == pytest.approx([8 / 10, 1.0])
    assert overall == pytest.approx({"tp": 4, "fp": 2, "fn": 0, "iou": 4 / 6, "f1": 0.8})
    with pytest.raises(ValueError, match="shape"):
        building_f1.pixel_scores(pred[0], truth_masks)


@pytest.mark.parametrize(("value", "message"), [("nan", "non-finite Confidence 'nan'"),
                                                ("-inf", "non-finite Confidence '-inf'"),
                                                ("", "non-numeric Confidence ''")])
def test_confidence_must_be_a_finite_number(tmp_path: Path, value: str, message: str) -> None:
    path = tmp_path / "conf.csv"
    path.write_text("ImageId,BuildingId,PolygonWKT_Pix,Confidence\n"
                    f'{VEGAS},0,"POLYGON ((0 0,10 0,10 10,0 0))",{value}\n'
                    f"{VEGAS},-1,POLYGON EMPTY,\n")
    with pytest.raises(InputError, match=rf"conf\.csv, line 2: {message}"):
        building_f1.read_proposals_csv(path)
