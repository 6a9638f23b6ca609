"""Road graphs and their clean-up: straight roads, junctions, merged junctions, spurs, gaps,
rings, small pieces and loops, on probability maps drawn here and on hand-made graphs."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
from rasterio import features
from shapely.geometry import LineString

from aerialsam.inference import road_graph
from aerialsam.inference.road_graph import RoadGraphOptions
from aerialsam.inference.road_vectorize import mask_to_graph

SIDE = 300
ROW = 151.0  # the y of the drawn east-west road


def draw(*lines: list[tuple[float, float]], width: float = 12.0, side: int = SIDE,
         shape: tuple[int, int] | None = None) -> np.ndarray:
    """A probability map (0.9 road, 0.05 elsewhere) of roads along pixel-coordinate lines."""
    shape = shape or (side, side)
    shapes = [(LineString(line).buffer(width / 2, cap_style="flat"), 1) for line in lines]
    burned = features.rasterize(shapes, out_shape=shape, dtype="uint8")
    return np.where(burned > 0, 0.9, 0.05).astype(np.float32)


def degrees(graph: nx.MultiGraph) -> list[int]:
    return sorted(d for _, d in graph.degree())


def lengths(graph: nx.MultiGraph) -> list[float]:
    return sorted(d["length"] for *_, d in graph.edges(data=True))


def cycles(graph: nx.MultiGraph) -> int:
    """Independent cycles (parallel edges and self-loops count)."""
    return (graph.number_of_edges() - graph.number_of_nodes()
            + nx.number_connected_components(graph))


def node_of_degree(graph: nx.MultiGraph, degree: int) -> np.ndarray:
    (node,) = [n for n, d in graph.degree() if d == degree]
    return road_graph.position(graph, node)


def test_straight_road_is_one_edge_of_the_right_length() -> None:
    # a road across the tile: thinning stops short of the edges, the clean-up goes on to them
    across = mask_to_graph(draw([(0, ROW), (SIDE, ROW)]))
    assert degrees(across) == [1, 1]
    assert abs(lengths(across)[0] - SIDE) <= 2
    ends = sorted(road_graph.position(across, n).tolist() for n in across)
    assert ends[0][0] == 0 and ends[1][0] == SIDE
    assert all(abs(y - ROW) <= 1 for _, y in ends)
    short = mask_to_graph(draw([(0, ROW), (SIDE, ROW)]), RoadGraphOptions(gap_m=0))
    assert lengths(short)[0] < SIDE - 8
    # a road inside the tile stops about half its width short of its ends, no more
    inside = mask_to_graph(draw([(40, ROW), (260, ROW)], width=12))
    (edge,) = inside.edges(data=True)
    xs = sorted(road_graph.position(inside, n)[0] for n in inside)
    assert 40 < xs[0] <= 40 + 6 and 260 - 6 <= xs[1] < 260
    assert abs(edge[2]["length"] - (xs[1] - xs[0])) <= 1.5


def test_edges_carry_pixel_paths_lengths_and_metres() -> None:
    graph = mask_to_graph(draw([(0, ROW), (SIDE, ROW)]), pixel_size=(0.25, 0.3))
    (u, v, data), = graph.edges(data=True)
    assert isinstance(data["geometry"], LineString)
    assert data["length"] == data["geometry"].length
    assert math.isclose(data["length_m"], 0.25 * data["length"], rel_tol=0.01)
    ends = {tuple(data["geometry"].coords[0]), tuple(data["geometry"].coords[-1])}
    assert ends == {tuple(road_graph.position(graph, n)) for n in (u, v)}
    assert graph.graph["pixel_size"] == (0.25, 0.3)


def test_t_junction_is_three_edges_at_one_degree_three_node() -> None:
    graph = mask_to_graph(draw([(0, ROW), (SIDE, ROW)], [(150, ROW), (150, SIDE)]))
    assert degrees(graph) == [1, 1, 1, 3]
    assert graph.number_of_edges() == 3
    assert np.allclose(node_of_degree(graph, 3), (150, ROW), atol=3)
    assert abs(sum(lengths(graph)) - SIDE - (SIDE - ROW)) <= 4


def test_plus_is_one_degree_four_node() -> None:
    graph = mask_to_graph(draw([(0, ROW), (SIDE, ROW)], [(150, 0), (150, SIDE)]))
    assert degrees(graph) == [1, 1, 1, 1, 4]
    assert np.allclose(node_of_degree(graph, 4), (150, ROW), atol=2)


def test_two_close_junctions_are_merged_and_only_when_close() -> None:
    # a crossing whose two halves are 6 px (1.8 m) apart: the skeleton has two junctions
    offset = draw([(0, ROW), (SIDE, ROW)], [(147, 0), (147, ROW)], [(153, ROW), (153, SIDE)])
    apart = mask_to_graph(offset, RoadGraphOptions(merge_m=0.5))
    assert degrees(apart) == [1, 1, 1, 1, 3, 3]
    merged = mask_to_graph(offset)  # merge_m = 3 m
    assert degrees(merged) == [1, 1, 1, 1, 4]
    assert np.allclose(node_of_degree(merged, 4), (150, ROW), atol=2)
    far = draw([(0, ROW), (SIDE, ROW)], [(120, 0), (120, ROW)], [(180, ROW), (180, SIDE)])
    assert degrees(mask_to_graph(far)) == [1, 1, 1, 1, 3, 3]  # 60 px (18 m) apart


def test_short_spur_is_pruned_and_a_real_side_road_kept() -> None:
    road = [(0, ROW), (SIDE, ROW)]
    spur = draw(road, [(100, ROW), (100, ROW + 6 + 5)], width=12)  # 5 px past the edge
    assert degrees(mask_to_graph(spur)) == [1, 1]
    kept = mask_to_graph(spur, RoadGraphOptions(spur_m=0.5))
    assert degrees(kept) == [1, 1, 1, 3]  # the spur is in the skeleton: pruning removed it
    side = mask_to_graph(draw(road, [(100, ROW), (100, ROW + 6 + 60)], width=12))
    assert degrees(side) == [1, 1, 1, 3]
    assert abs(lengths(side)[0] - 60) <= 3


def test_spur_length_is_measured_in_metres_on_non_square_pixels() -> None:
    # Vegas: 0.24 m east-west, 0.30 m north-south; side roads 36 px long from the junction
    options = RoadGraphOptions(spur_m=10.0)
    size = (0.24, 0.30)
    north_south = draw([(0, ROW), (SIDE, ROW)], [(150, ROW), (150, ROW + 36)], width=3)
    east_west = draw([(ROW, 0), (ROW, SIDE)], [(ROW, 150), (ROW + 36, 150)], width=3)
    assert degrees(mask_to_graph(north_south, options, size)) == [1, 1, 1, 3]  # 10.8 m
    assert degrees(mask_to_graph(east_west, options, size)) == [1, 1]  # 8.6 m: pruned


def test_small_break_is_closed_and_a_long_gap_is_not() -> None:
    def broken(gap: int) -> np.ndarray:
        return draw([(0, ROW), (150, ROW)], [(150 + gap, ROW), (SIDE, ROW)])

    closed = mask_to_graph(broken(4))
    assert degrees(closed) == [1, 1] and abs(lengths(closed)[0] - (SIDE - 1)) <= 2
    assert nx.number_connected_components(mask_to_graph(broken(4), RoadGraphOptions(
        gap_m=0.0))) == 2
    apart = mask_to_graph(broken(40))
    assert nx.number_connected_components(apart) == 2 and degrees(apart) == [1, 1, 1, 1]


def test_break_before_a_crossing_road_joins_its_side() -> None:
    # a side road stopping 4 px short of the main road: joined to a new junction on it
    prob = draw([(0, ROW), (SIDE, ROW)], [(150, ROW + 6 + 4), (150, SIDE)])
    graph = mask_to_graph(prob)
    assert degrees(graph) == [1, 1, 1, 3]
    assert np.allclose(node_of_degree(graph, 3), (150, ROW), atol=2)


def test_ring_road_survives_as_a_cycle() -> None:
    rows, cols = np.mgrid[:SIDE, :SIDE]
    radius = np.hypot(rows + 0.5 - 150, cols + 0.5 - 150)
    graph = mask_to_graph(np.where(np.abs(radius - 90) < 6, 0.9, 0.0))
    assert cycles(graph) == 1
    assert not list(nx.selfloop_edges(graph))  # split in three, for the scorer
    assert abs(sum(lengths(graph)) - 2 * math.pi * 90) / (2 * math.pi * 90) < 0.02


def test_small_pieces_are_dropped() -> None:
    prob = draw([(0, ROW), (SIDE, ROW)], [(100, 40), (120, 40)], width=8)  # 20 px: ~3.6 m
    graph = mask_to_graph(prob)
    assert nx.number_connected_components(graph) == 1
    assert nx.number_connected_components(
        mask_to_graph(prob, RoadGraphOptions(min_component_m=1.0))) == 2


def test_empty_and_uint8_maps() -> None:
    assert mask_to_graph(np.zeros((64, 64), np.float32)).number_of_nodes() == 0
    assert mask_to_graph(np.zeros((64, 64), bool)).number_of_edges() == 0
    as_uint8 = (draw([(0, ROW), (SIDE, ROW)]) * 255).astype(np.uint8)
    assert degrees(mask_to_graph(as_uint8)) == [1, 1]


def test_hole_in_a_wide_road_is_filled_not_a_loop() -> None:
    prob = draw([(0, ROW), (SIDE, ROW)], width=30)
    prob[148:154, 140:150] = 0.0  # 60 px: 5.4 m²
    assert degrees(mask_to_graph(prob)) == [1, 1]
    loop = mask_to_graph(prob, RoadGraphOptions(fill_holes_m2=0.0, spur_m=0.5))
    assert cycles(loop) == 1


def line_graph(*paths: list[tuple[float, float]], size: tuple[float, float] = (0.3, 0.3)
               ) -> nx.MultiGraph:
    """A road graph of pixel paths; paths sharing an end point share its node."""
    graph = road_graph.empty_graph(size)
    nodes: dict[tuple[float, float], int] = {}
    for path in paths:
        ends = [nodes.setdefault(tuple(p), len(nodes)) for p in (path[0], path[-1])]
        road_graph.add_edge(graph, ends[0], ends[1], np.asarray(path, float))
    return graph


def test_close_gaps_needs_a_consistent_direction() -> None:
    facing = line_graph([(0, 50), (100, 50)], [(115, 50), (200, 50)])  # 15 px: 4.5 m
    assert road_graph.close_gaps(facing, 6.0) == 1
    assert nx.number_connected_components(facing) == 1
    sideways = line_graph([(0, 50), (100, 50)], [(100, 62), (200, 62)])  # 12 px, 90° off
    assert road_graph.close_gaps(sideways, 6.0) == 0
    parallel = line_graph([(0, 50), (100, 50)], [(104, 58), (200, 58)])  # 64° off
    assert road_graph.close_gaps(parallel, 6.0, max_angle_deg=40) == 0


def test_close_gaps_onto_an_edge_splits_it() -> None:
    graph = line_graph([(0, 50), (200, 50)], [(100, 60), (100, 150)])  # stem 10 px short
    assert road_graph.close_gaps(graph, 6.0) == 1
    assert degrees(graph) == [1, 1, 1, 2, 3]  # the joined end, until degree 2 is dissolved
    assert np.allclose(node_of_degree(graph, 3), (100, 50))
    assert sorted(round(x) for x in lengths(graph)) == [10, 90, 100, 100]
    assert road_graph.dissolve_degree_two(graph) == 1
    assert degrees(graph) == [1, 1, 1, 3] and lengths(graph) == [100.0, 100.0, 100.0]


def test_close_gaps_takes_no_shortcut_across_a_bend() -> None:
    # a hairpin: the end is 12 px from the road's other arm, but 200 px away along it
    graph = line_graph([(100, 50), (0, 50), (0, 62), (95, 62)])
    assert road_graph.close_gaps(graph, 6.0, max_angle_deg=90) == 0
    ring = line_graph([(55, 50), (100, 50), (100, 150), (0, 150), (0, 50), (45, 50)])
    assert road_graph.close_gaps(ring, 6.0) == 1  # a ring broken once: 10 px, 390 px round
    assert cycles(ring) == 1


def test_prune_spurs_judges_a_fork_as_a_whole() -> None:
    # a road ending in a fork of two 8 px prongs: both go, the road stays
    graph = line_graph([(0, 50), (100, 50)], [(100, 50), (106, 44)], [(100, 50), (106, 56)])
    assert road_graph.prune_spurs(graph, 10.0) == 2
    assert degrees(graph) == [1, 1] and lengths(graph) == [100.0]


def test_loops_are_split_or_dropped() -> None:
    graph = road_graph.empty_graph()
    square = [(0, 0), (60, 0), (60, 60), (0, 60), (0, 0)]
    road_graph.add_edge(graph, 0, 0, square)
    road_graph.add_edge(graph, 0, 1, [(0, 0), (0, -100)])
    road_graph.add_edge(graph, 1, 1, [(0, -100), (3, -103), (0, -106), (0, -100)])
    assert road_graph.drop_loops(graph, 10.0) == 1  # the 4 m loop: a hole, not a road
    assert road_graph.split_loops(graph) == 1
    assert not list(nx.selfloop_edges(graph))
    assert degrees(graph) == [1, 2, 2, 3]
    assert math.isclose(sum(lengths(graph)), 240 + 100)


def test_merge_junctions_moves_the_edges_to_the_new_node() -> None:
    graph = line_graph([(0, 50), (100, 50)], [(104, 50), (200, 50)], [(100, 0), (100, 50)],
                       [(104, 50), (104, 100)], [(100, 50), (104, 50)])
    assert road_graph.merge_junctions(graph, 3.0) == 1
    assert degrees(graph) == [1, 1, 1, 1, 4]
    centre = node_of_degree(graph, 4)
    assert np.allclose(centre, (102, 50))
    for *_, data in graph.edges(data=True):
        ends = [tuple(data["geometry"].coords[i]) for i in (0, -1)]
        assert tuple(centre) in ends


def test_simplify_keeps_ends_and_tolerance() -> None:
    path = [(x, 50 + (x % 2) * 0.8) for x in range(0, 101)]
    graph = line_graph(path)
    road_graph.simplify_edges(graph, 1.0)
    (_, _, data), = graph.edges(data=True)
    assert list(data["geometry"].coords) == [(0.0, 50.0), (100.0, 50.0)]
    assert data["length"] == 100.0 and math.isclose(data["length_m"], 30.0)
