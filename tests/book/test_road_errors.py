"""The errors of a road graph on one tile: missed roads and junctions, breaks, spurs.

Graphs are small hand-made crossings in pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from aerialsam.book import road_errors

LINE = shapely.LineString


def test_node_degrees_merge_shared_vertices() -> None:
    lines = [LINE([(0, 50), (50, 50)]), LINE([(50, 50), (100, 50)]),
             LINE([(50, 0), (50, 50.04)])]  # ends within 0.1 px of the junction
    xy, degree = road_errors.node_degrees(lines)
    assert sorted(degree.tolist()) == [1, 1, 1, 3]
    assert xy[degree == 3].tolist() == [[50.0, 50.0]]


def _crossing() -> list[shapely.LineString]:
    """A crossing of two 400 px roads at (200, 200), four sections."""
    centre = (200.0, 200.0)
    return [LINE([(0, 200), centre]), LINE([centre, (400, 200)]),
            LINE([(200, 0), centre]), LINE([centre, (200, 400)])]


def test_a_broken_crossing_has_a_missed_junction_breaks_and_a_spur() -> None:
    proposal = [np.array([[0, 202], [300, 202]]),  # the east-west road, 2 px off: found,
                np.array([[300, 202], [400, 202]]),  # split where the false road leaves it
                np.array([[201, 0], [201, 150]]),  # north-south, stops 50 px short
                np.array([[201, 250], [201, 400]]),  # and starts again 50 px after
                np.array([[300, 202], [300, 320], [340, 330]])]  # a false road off it
    errors = road_errors.graph_errors(_crossing(), proposal)
    assert errors.missed_junctions.tolist() == [[200.0, 200.0]]
    assert sorted(errors.breaks.tolist()) == [[201.0, 150.0], [201.0, 250.0]]
    assert errors.spurs.tolist() == [[340.0, 330.0]]
    # the gap: 100 px of the north-south road, less the tolerance at each of its ends and on
    # each side of the east-west road that crosses it
    missed = sum(line.length for line in errors.missed)
    assert missed == pytest.approx(100 - 4 * road_errors.SNAP_DISTANCE, abs=1.0)
    false = sum(line.length for line in errors.false)
    assert false == pytest.approx(118 - road_errors.SNAP_DISTANCE + np.hypot(40, 10), abs=2.0)


def test_an_exact_proposal_has_no_errors_and_an_empty_one_misses_everything() -> None:
    exact = road_errors.graph_errors(_crossing(), _crossing())
    assert not exact.missed and not exact.false
    assert len(exact.missed_junctions) == len(exact.breaks) == len(exact.spurs) == 0
    empty = road_errors.graph_errors(_crossing(), [])
    assert sum(line.length for line in empty.missed) == pytest.approx(800)
    assert len(empty.missed_junctions) == 1 and len(empty.breaks) == 0


def test_the_error_table_counts_and_measures_in_metres() -> None:
    errors = road_errors.graph_errors(_crossing(), [])
    table = road_errors.error_table(errors, (0.25, 0.5))
    assert table.loc["true roads", "count"] == 4
    assert table.loc["true roads", "metres"] == pytest.approx(400 * 0.25 + 400 * 0.5)
    assert table.loc["missed junctions (of 1)", "count"] == 1
