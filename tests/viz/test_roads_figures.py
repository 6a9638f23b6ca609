"""The road figures (:mod:`aerialsam.viz.roads`) draw, render and close, one test each.

Inputs: the real SpaceNet 3 tile shipped with the book (``book/samples``), its road mask in
metres, a stand-in probability made from that mask, the book's worked APLS example, and (for
the road models chapter) a proposal made by shifting half of the tile's roads.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shapely.affinity
from matplotlib.figure import Figure

from aerialsam.book import road_errors, road_models, roads
from aerialsam.evaluation.roads import ROAD_ORACLE_NOTE
from aerialsam.viz import roads as road_figures

SAMPLE = Path(__file__).resolve().parents[2] / "book" / "samples" / "sn3_vegas_img0"


@pytest.fixture(autouse=True)
def no_figure_left_open() -> Iterator[None]:
    plt.close("all")  # figures an earlier module left are not this test's
    yield
    leaked = plt.get_fignums()
    plt.close("all")
    assert not leaked, f"figures left open: {leaked}"


@pytest.fixture(scope="module")
def scene() -> roads.RoadScene:
    """The real SpaceNet 3 tile and its roads."""
    return roads.load_scene(SAMPLE / "RGB-PanSharpen_AOI_2_Vegas_img0.tif",
                            SAMPLE / "AOI_2_Vegas_img0.geojson")


@pytest.fixture(scope="module")
def mask(scene: roads.RoadScene) -> np.ndarray:
    return roads.road_target(scene)


def _drawn(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    assert any(ax.has_data() for ax in fig.axes)
    fig.canvas.draw()
    plt.close(fig)


def test_plot_road_tile_draws(scene: roads.RoadScene) -> None:
    fig = road_figures.plot_road_tile(scene.rgb, scene.lines, scene.image_id)
    assert fig.axes[0].get_legend() is not None  # the road types it shows
    _drawn(fig)


def test_plot_road_cities_draws(scene: roads.RoadScene) -> None:
    _drawn(road_figures.plot_road_cities({"a": scene.rgb, "b": scene.rgb},
                                         {"a": scene.lines, "b": scene.lines.iloc[:3]}))


def test_plot_road_mask_draws(scene: roads.RoadScene, mask: np.ndarray) -> None:
    fig = road_figures.plot_road_mask(scene.rgb, mask, scene.lines,
                                      roads.busiest_window(mask), "mask")
    assert fig.axes[1].get_xlim()[1] - fig.axes[1].get_xlim()[0] == 200
    _drawn(fig)


def test_plot_graph_steps_draws(scene: roads.RoadScene, mask: np.ndarray) -> None:
    crop = (slice(600, 900), slice(0, 300))
    probability = roads.simulated_probability(mask[crop])
    steps = roads.graph_steps(probability, roads.xy_pixel_size(scene))
    assert steps.cleaned.number_of_edges() > 0
    _drawn(road_figures.plot_graph_steps(probability, steps.binary, steps.skeleton, steps.raw,
                                         steps.cleaned, 0.5))


def test_plot_path_differences_draws() -> None:
    truth, proposal = roads.worked_example()
    pairs = [((40.0, 300.0), (560.0, 300.0)), ((40.0, 300.0), (300.0, 40.0))]
    table = roads.path_differences(roads.plain_graph(truth), roads.plain_graph(proposal),
                                   pairs)
    assert table["cost"].tolist() == [pytest.approx(0.014, abs=1e-3), 1.0]
    _drawn(road_figures.plot_path_differences(truth, proposal, table,
                                              roads.control_points(truth)))


def _apls_table() -> pd.DataFrame:
    summary = pd.DataFrame({
        "model": ["book_roads_unet", "sam2-oracle"], "apls_AOI_2_Vegas": [0.4, 0.9],
        "overall_apls": [0.4, 0.9], "pixel_iou": [0.3, 0.5], "images_per_s": [2.0, 1.0],
        "note": ["", ROAD_ORACLE_NOTE]})
    return road_models.apls_table(summary, {"book_roads_unet": "U-Net",
                                            "sam2-oracle": "SAM 2 (ORACLE)"})


def test_plot_graph_errors_draws(scene: roads.RoadScene) -> None:
    truth = [line for line in scene.lines.geometry if line.geom_type == "LineString"]
    proposal = [shapely.affinity.translate(line, 3, 2) for line in truth[::2]]
    errors = road_errors.graph_errors(truth, proposal)
    assert len(errors.missed) and len(errors.missed_junctions)
    fig = road_figures.plot_graph_errors(scene.rgb, errors, "errors")
    assert all(ax.get_legend() is not None for ax in fig.axes)
    _drawn(fig)


def test_plot_graph_errors_draws_an_empty_proposal(scene: roads.RoadScene) -> None:
    truth = [line for line in scene.lines.geometry if line.geom_type == "LineString"]
    _drawn(road_figures.plot_graph_errors(scene.rgb, road_errors.graph_errors(truth, [])))


def test_plot_apls_per_city_draws_with_the_winner_as_ticks() -> None:
    fig = road_figures.plot_apls_per_city(_apls_table())
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["Las Vegas", "overall"]
    _drawn(fig)


def test_show_apls_table_renders_with_dashes_and_a_caption() -> None:
    html = road_figures.show_apls_table(_apls_table()).to_html()
    assert "2017: albu (1st)" in html and "—" in html and "own test set" in html
    assert ">scored on<" not in html  # said once, in the caption


def test_plot_road_losses_draws() -> None:
    metrics = pd.DataFrame({"step": [1, 2, 3, 3], "split": ["train"] * 3 + ["val"],
                            "loss": [1.8, 1.7, 1.6, 1.65]})
    _drawn(road_figures.plot_road_losses({"U-Net": metrics, "U-Net + clDice": metrics},
                                         "losses"))
