"""Road graphs to SpaceNet 3 proposals: the proposal CSV (the official scorer's rules, checked
independently), the GeoPackage with metric lengths on non-square pixels, refused or cleaned
graphs."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from shapely.geometry import LineString

from aerialsam.data.spacenet import pixel_size_m
from aerialsam.errors import InputError
from aerialsam.inference import road_graph
from aerialsam.inference.road_sections import (
    road_frame,
    write_roads_csv,
    write_roads_vector,
)
from aerialsam.inference.road_vectorize import mask_to_graph, read_road_graph
from tests.inference.test_road_graph import draw
from tests.inference.test_road_vectorize import LATITUDE, VEGAS, network, write_raster


def scorer_problems(wkts: list[str]) -> list[str]:
    """What the official SpaceNet 3 scorer (RoadSet.getError) refuses in one image's rows."""
    if len(wkts) > 1 and any("EMPTY" in w for w in wkts):
        return ["EMPTY mixed with roads"]
    problems, seen = [], set()
    for wkt in wkts:
        if "EMPTY" in wkt:
            continue
        coords = np.asarray(shapely.from_wkt(wkt).coords)
        if len(coords) == 1:
            problems.append("lone point")
        keys = [tuple(k) for k in np.round(coords * 10).astype(int).tolist()]
        for i in range(1, len(coords)):
            if math.dist(coords[i - 1], coords[i]) < 0.01:
                problems.append("empty section")
            step = (min(keys[i - 1], keys[i]), max(keys[i - 1], keys[i]))
            if step in seen:
                problems.append("duplicate section")
            seen.add(step)
    return problems


def read_csv(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, keep_default_na=False)
    assert list(table.columns) == ["ImageId", "WKT_Pix"]
    return table


def test_csv_has_only_sections_the_scorer_accepts(tmp_path: Path) -> None:
    graph = mask_to_graph(network())
    lines = [LineString([(0, 0), (10, 0), (10, 10)])]
    out = write_roads_csv({"AOI_2_Vegas_img1": graph, "AOI_2_Vegas_img2": road_graph.empty_graph(),
                           "SN3_roads_train_AOI_2_Vegas_PS-RGB_img3.tif": lines},
                          tmp_path / "roads.csv")
    table = read_csv(out)
    assert table["ImageId"].unique().tolist() == ["AOI_2_Vegas_img1", "AOI_2_Vegas_img2",
                                                  "AOI_2_Vegas_img3"]
    by_image = table.groupby("ImageId")["WKT_Pix"].apply(list).to_dict()
    assert by_image["AOI_2_Vegas_img2"] == ["LINESTRING EMPTY"]
    assert by_image["AOI_2_Vegas_img3"] == ["LINESTRING (0 0, 10 0, 10 10)"]
    for wkts in by_image.values():
        assert scorer_problems(wkts) == []
    roads = shapely.from_wkt(by_image["AOI_2_Vegas_img1"])
    assert len(roads) == graph.number_of_edges()
    total = sum(d["length"] for *_, d in graph.edges(data=True))
    assert math.isclose(sum(r.length for r in roads), total, rel_tol=0.01)


def test_degenerate_graph_is_cleaned_for_the_csv(tmp_path: Path) -> None:
    graph = road_graph.empty_graph()
    graph.add_node("a", x=10.0, y=10.0)
    graph.add_node("b", x=50.0, y=10.0)
    graph.add_node("c", x=50.0, y=10.04)  # the same point to the scorer (0.1 px)
    graph.add_edge("a", "b")  # no geometry: straight between its nodes
    graph.add_edge("a", "b", geometry=LineString([(50, 10), (10, 10)]))  # the same, reversed
    graph.add_edge("b", "c")  # zero length once rounded
    graph.add_edge("a", "a")  # a self-loop of no length
    graph.add_edge("b", "b", geometry=LineString([(50, 10), (60, 10), (60, 20), (50, 10)]))
    graph.add_edge("c", "c", geometry=LineString([(50, 10), (50.02, 10), (50, 10)]))
    graph.add_node("lone", x=5.0, y=5.0)
    out = write_roads_csv({"AOI_2_Vegas_img1": graph}, tmp_path / "roads.csv")
    wkts = read_csv(out)["WKT_Pix"].tolist()
    assert scorer_problems(wkts) == []
    assert math.isclose(sum(shapely.from_wkt(w).length for w in wkts), 40 + 10 + 10 + 200 ** 0.5)


def test_graph_without_coordinates_is_refused_in_one_line(tmp_path: Path) -> None:
    graph = nx.MultiGraph()
    graph.add_edge(1, 2)
    with pytest.raises(InputError) as error:
        write_roads_csv({"AOI_2_Vegas_img1": graph}, tmp_path / "roads.csv")
    assert "roads.csv" in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "roads.csv").exists()


@pytest.mark.parametrize(("lines", "problem"), [
    ([LineString([(0, 0), (5, 0)]), LineString([(5, 0), (0, 0), (0, 5)])], "duplicate section"),
    ([LineString([(0, 0), (0.01, 0), (5, 5)])], "zero-length section"),
    ([LineString(), LineString([(0, 0), (5, 0)])], "LINESTRING EMPTY mixed with roads"),
    ([shapely.Point(1, 1)], "not a LineString"),
])
def test_invalid_lines_are_refused_in_one_line(tmp_path: Path, lines: list, problem: str
                                               ) -> None:
    with pytest.raises(InputError) as error:
        write_roads_csv({"AOI_2_Vegas_img4": lines}, tmp_path / "roads.csv")
    message = str(error.value)
    assert problem in message and "AOI_2_Vegas_img4" in message and "roads.csv" in message
    assert "\n" not in message and not (tmp_path / "roads.csv").exists()


def test_geopackage_has_map_lines_and_metric_lengths(tmp_path: Path) -> None:
    # a north-south and an east-west road of 100 px: 0.30 m and 0.24 m pixels at 36.2° N
    prob = draw([(50, 100), (50, 200)], [(100, 250), (200, 250)], width=8, side=300)
    path = write_raster(tmp_path / "prob.tif", prob)
    graph = read_road_graph(path)
    frame = road_frame(graph)
    out = write_roads_vector(frame, tmp_path / "roads.gpkg")
    back = gpd.read_file(out)
    with rasterio.open(path) as src:
        assert back.crs == src.crs
    assert len(back) == 2 and set(back.geom_type) == {"LineString"}
    east_west, north_south = pixel_size_m(LATITUDE)
    for row in back.itertuples():
        x0, y0, x1, y1 = row.geometry.bounds
        vertical = (y1 - y0) > (x1 - x0)
        assert 85 <= row.length_px <= 100
        expected = row.length_px * (north_south if vertical else east_west)
        assert math.isclose(row.length_m, expected, rel_tol=0.01)
        assert shapely.equals_exact(row.geometry.centroid, shapely.Point(
            VEGAS * ((50, 150) if vertical else (150, 250))), tolerance=3e-6)


def test_frame_needs_georeferencing() -> None:
    with pytest.raises(InputError, match="no transform or CRS"):
        road_frame(mask_to_graph(draw([(0, 151), (300, 151)])))
