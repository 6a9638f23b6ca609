"""Road rasters to graphs: strips against the whole raster, pixel sizes in metres, an empty
raster, refused rasters."""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import rasterio
from affine import Affine

from aerialsam.data.spacenet import pixel_size_m
from aerialsam.errors import InputError
from aerialsam.inference import road_graph, road_vectorize
from aerialsam.inference.road_sections import (
    road_frame,
    road_sections,
    write_roads_csv,
)
from aerialsam.inference.road_vectorize import mask_to_graph, read_road_graph
from tests.inference.test_road_graph import draw

VEGAS = Affine(2.7e-6, 0.0, -115.30, 0.0, -2.7e-6, 36.20)
LATITUDE = 36.20


def write_raster(path: Path, values: np.ndarray, transform: Affine = VEGAS,
                 crs: str | None = "EPSG:4326") -> Path:
    values = values if values.ndim == 3 else values[None]
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[2], height=values.shape[1],
                       count=values.shape[0], dtype=values.dtype, crs=crs,
                       transform=transform) as dst:
        dst.write(values)
    return path


def network() -> np.ndarray:
    """A 700 x 400 map: a crossing, a T, a diagonal, a ring and roads on strip edges."""
    prob = draw([(100, 0), (100, 700)], [(0, 256), (400, 256)], [(100, 390), (400, 390)],
                [(0, 40), (400, 640)], [(300, 0), (300, 120)], shape=(700, 400))
    rows, cols = np.mgrid[:700, :400]
    radius = np.hypot(rows + 0.5 - 520, cols + 0.5 - 280)
    prob[np.abs(radius - 60) < 6] = 0.9
    return prob


def test_strips_give_the_graph_of_the_whole_raster(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "prob.tif", network())
    whole = read_road_graph(path)
    strips = read_road_graph(path, strip_rows=128, margin=48)  # 6 strips, edges at 256, 384…
    assert whole.number_of_edges() >= 10
    assert nx.is_isomorphic(whole, strips)
    assert sorted(d for _, d in whole.degree()) == sorted(d for _, d in strips.degree())
    assert np.allclose(sorted(d["length"] for *_, d in whole.edges(data=True)),
                       sorted(d["length"] for *_, d in strips.edges(data=True)), atol=2)
    nodes = np.array(sorted(road_graph.position(whole, n).tolist() for n in whole))
    again = np.array(sorted(road_graph.position(strips, n).tolist() for n in strips))
    assert np.abs(nodes - again).max() <= 1.0
    assert not nx.is_isomorphic(whole, read_road_graph(path, strip_rows=128, margin=0))


def test_raster_graph_matches_the_array_graph(tmp_path: Path) -> None:
    prob = network()
    path = write_raster(tmp_path / "prob.tif", (prob * 255).astype(np.uint8))
    graph = read_road_graph(path)
    with rasterio.open(path) as src:
        size = road_vectorize.raster_pixel_size(src)
    assert nx.is_isomorphic(graph, mask_to_graph(prob, pixel_size=size))
    assert graph.graph["crs"] == "EPSG:4326" and graph.graph["transform"] == VEGAS
    assert graph.graph["shape"] == (700, 400)


def test_pixel_size_in_metres(tmp_path: Path) -> None:
    with rasterio.open(write_raster(tmp_path / "p.tif", np.zeros((10, 10), np.float32))) as src:
        east_west, north_south = road_vectorize.raster_pixel_size(src)
    expected = pixel_size_m(LATITUDE - 5 * 2.7e-6)
    assert math.isclose(east_west, expected[0], rel_tol=1e-6)
    assert math.isclose(north_south, expected[1], rel_tol=1e-6)
    assert east_west < 0.85 * north_south  # not square in metres
    utm = Affine(0.5, 0.0, 500_000.0, 0.0, -0.5, 4_000_000.0)
    with rasterio.open(write_raster(tmp_path / "u.tif", np.zeros((10, 10), np.float32), utm,
                                    "EPSG:32611")) as src:
        assert road_vectorize.raster_pixel_size(src) == (0.5, 0.5)


def test_empty_raster_gives_no_road_and_an_empty_row(tmp_path: Path) -> None:
    path = write_raster(tmp_path / "prob.tif", np.zeros((100, 100), np.float32))
    graph = read_road_graph(path)
    assert graph.number_of_nodes() == 0 and road_sections(graph) == []
    out = write_roads_csv({"AOI_2_Vegas_img7": graph}, tmp_path / "roads.csv")
    assert out.read_text() == "ImageId,WKT_Pix\nAOI_2_Vegas_img7,LINESTRING EMPTY\n"
    frame = road_frame(graph)
    assert len(frame) == 0 and frame.crs == "EPSG:4326"


def test_not_a_probability_raster_is_refused_in_one_line(tmp_path: Path) -> None:
    imagery = np.full((3, 50, 50), 700, np.uint16)
    path = write_raster(tmp_path / "image.tif", imagery)
    with pytest.raises(InputError) as error:
        read_road_graph(path)
    message = str(error.value)
    assert message.startswith(str(path)) and "3 band(s) of uint16" in message
    assert "\n" not in message
    logits = write_raster(tmp_path / "logits.tif", np.full((50, 50), 4.0, np.float32))
    with pytest.raises(InputError, match="not road probabilities"):
        read_road_graph(logits)
    with pytest.raises(InputError, match="file not found"):
        read_road_graph(tmp_path / "missing.tif")
