"""Every public figure of :mod:`aerialsam.viz` draws, renders and closes.

One test per figure function, named after it (``test_<function>_draws``; the module's name
first where two modules share a function name), so that a broken figure fails here, by
name, rather than only in a papermill run of the book. Each test calls the function on
inputs the library itself makes from the synthetic demo AOIs (``demo_root``): stretches,
chips, splits, SpaceNet scores of simulated proposals, evaluation tables, a prediction
folder. It checks that a :class:`~matplotlib.figure.Figure` came back (or that the Axes got
something drawn on it), renders the figure fully with ``fig.canvas.draw()`` and closes it;
an autouse fixture fails a test that leaves a figure open.

The inputs are only as realistic as the pipeline needs: the "models" here are the true
footprints blurred, and the scores describe simulated proposals, not any model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import rasterio
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from rasterio.windows import Window
from scipy import ndimage

from aerialsam.book import finetune, metric, zero_shot
from aerialsam.data import spacenet
from aerialsam.data.manifest import load_manifest
from aerialsam.evaluation import analysis
from aerialsam.evaluation.per_city import ModelScore
from aerialsam.inference import auto_masks
from aerialsam.inference.prediction import (
    TileOptions,
    VectorizeOptions,
    predict_images,
)
from aerialsam.inference.tiling import NO_FLIP, Flip
from aerialsam.inference.vectorize import rasterize_instances
from aerialsam.metrics.building_f1 import ScoreResult, score
from aerialsam.prep import splits
from aerialsam.prep.chips import Source, chip_sources
from aerialsam.prep.stretch import Stretch
from aerialsam.training import runs
from aerialsam.training.logs import METRIC_COLUMNS
from aerialsam.training.validation import Examples, truth_of
from aerialsam.viz import (
    chipping,
    curves,
    downloads,
    imagery,
    predictions,
    results,
    scoring,
    targets,
    widgets,
)

CHIP = 256
OVERLAP = 32
TILE_SIDE = 650


# ---------------------------------------------------------------------------------------------
# Rendering and leak checks


@pytest.fixture(autouse=True)
def no_figure_left_open() -> Iterator[None]:
    """Start each test with no figure and fail it if it leaves one open."""
    plt.close("all")
    yield
    leaked = plt.get_fignums()
    plt.close("all")
    assert not leaked, f"figures left open: {leaked}"


def render(fig: object) -> None:
    """Assert ``fig`` is a Figure with something in it, draw it fully, close it."""
    assert isinstance(fig, Figure), f"expected a Figure, got {type(fig).__name__}"
    assert fig.axes or fig.legends, "the figure is empty"
    fig.canvas.draw()
    plt.close(fig)


def drawn_on(ax: Axes) -> bool:
    """Whether anything was drawn on ``ax`` (data, images, patches or collections)."""
    return ax.has_data() or bool(ax.images or ax.patches or ax.collections or ax.lines)


# ---------------------------------------------------------------------------------------------
# Inputs made by the library from the demo AOIs


@pytest.fixture(scope="module")
def tiles(demo_root: Path) -> list[spacenet.Tile]:
    """The twelve demo tiles (four AOIs, three each; the third of each has no building)."""
    return spacenet.find_tiles(demo_root)


@pytest.fixture(scope="module")
def stretches(tiles: list[spacenet.Tile]) -> dict[str, Stretch]:
    """The per-AOI stretch of the demo tiles."""
    return imagery.aoi_stretches(tiles)


@pytest.fixture(scope="module")
def busy(tiles: list[spacenet.Tile]) -> spacenet.Tile:
    """The Vegas tile with the most buildings."""
    return chipping.busiest_tile(tiles)


@pytest.fixture(scope="module")
def empty_tile(tiles: list[spacenet.Tile]) -> spacenet.Tile:
    """A Vegas tile without any building."""
    tile = next(t for t in tiles if t.aoi == "AOI_2_Vegas" and t.number == 3)
    assert spacenet.read_tile_labels(tile).empty
    return tile


@pytest.fixture(scope="module")
def chipped(demo_root: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[Path, pd.DataFrame]:
    """The demo AOIs chipped at 256 px with a 32 px overlap: the chip folder and index."""
    out = tmp_path_factory.mktemp("chips")
    report = chip_sources(demo_root, out, size=CHIP, overlap=OVERLAP)
    return out, report.index


def footprint(tile: spacenet.Tile) -> np.ndarray:
    """The tile's true building footprint as a (650, 650) float32 {0, 1} array."""
    labels = spacenet.read_tile_labels(tile, pixel=True)
    instances = rasterize_instances(list(labels.geometry), (TILE_SIDE, TILE_SIDE))
    return (instances > 0).astype(np.float32)


def blurred_truth(tile: spacenet.Tile, sigma: float) -> np.ndarray:
    """A stand-in probability map: the true footprint blurred by ``sigma`` px (0..1)."""
    return np.clip(ndimage.gaussian_filter(footprint(tile), sigma), 0.0, 1.0)


def simulated_score(tiles: Sequence[spacenet.Tile], seed: int, miss: float = 0.15
                    ) -> ScoreResult:
    """The SpaceNet score of jittered truth (:func:`metric.jittered_proposals`) on ``tiles``."""
    sources = [Source(t.image_path, t.aoi, t.image_id) for t in tiles]
    truth = truth_of(sources)
    proposals = pd.concat([metric.jittered_proposals(truth[truth["ImageId"] == s.image_id],
                                                     s.image_id, seed=seed + i, miss=miss)
                           for i, s in enumerate(sources)], ignore_index=True)
    return score(truth, proposals, truth_image_ids=[s.image_id for s in sources])


@pytest.fixture(scope="module")
def scored(tiles: list[spacenet.Tile]) -> ScoreResult:
    """Simulated proposals on every demo tile, scored."""
    return simulated_score(tiles, seed=0)


@pytest.fixture(scope="module")
def summary(tiles: list[spacenet.Tile], scored: ScoreResult) -> pd.DataFrame:
    """A per-city evaluation summary as :func:`per_city.evaluate` writes it: three models."""
    worse = simulated_score(tiles, seed=10, miss=0.4)
    rows = [ModelScore("sam2-auto", worse, len(tiles), 48.0, False, Path("auto")).row(),
            ModelScore("sam2-oracle", scored, len(tiles), 30.0, True, Path("oracle")).row(),
            ModelScore("unet_tiny", scored, len(tiles), 6.0, False, Path("unet")).row()]
    return pd.DataFrame(rows)


NAMES = {"sam2-auto": "SAM 2 zero-shot (automatic masks)",
         "sam2-oracle": "SAM 2 + true boxes (ORACLE: upper bound)",
         "unet_tiny": "U-Net (unet_tiny)"}


@pytest.fixture(scope="module")
def headline(summary: pd.DataFrame) -> pd.DataFrame:
    """The headline table of :func:`summary`, with the 2017 rows."""
    return analysis.headline_table(summary, NAMES, "test")


class BlurredTruth:
    """A chip model whose probabilities are a tile's true footprint, blurred."""

    def __init__(self, tile: spacenet.Tile, sigma: float) -> None:
        self.prob = blurred_truth(tile, sigma)

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        """(B, 1, size, size) probabilities of the chips' windows (zero off the tile)."""
        size = chips.shape[1]
        out = np.zeros((len(chips), 1, size, size), dtype=np.float32)
        for i, window in enumerate(windows):
            part = self.prob[window.row_off:window.row_off + size,
                             window.col_off:window.col_off + size]
            out[i, 0, :part.shape[0], :part.shape[1]] = part
        return out


@pytest.fixture(scope="module")
def browser_data(tiles: list[spacenet.Tile], stretches: dict[str, Stretch],
                 tmp_path_factory: pytest.TempPathFactory) -> widgets.BrowserData:
    """An evaluation report of two blurred-truth "models" on the Vegas tiles, as the
    browser reads it (``<report>/<label>/predictions/predict.json``)."""
    report = tmp_path_factory.mktemp("report")
    vegas = [t for t in tiles if t.aoi == "AOI_2_Vegas"]
    sources = [Source(t.image_path, t.aoi, t.image_id) for t in vegas]
    names = {"blur_2": "truth blurred 2 px", "blur_6": "truth blurred 6 px"}
    for label, sigma, threshold in (("blur_2", 2.0, 0.5), ("blur_6", 6.0, 0.4)):
        predict_images(sources, report / label / "predictions",
                       lambda source, src, s=sigma: BlurredTruth(spacenet.tile_at(source.path), s),
                       {"model": "blurred-truth", "sigma": sigma},
                       TileOptions(CHIP, OVERLAP, 4), VectorizeOptions(threshold=threshold))
    models = analysis.browsed_models(report, names)
    return widgets.BrowserData({t.image_id: t for t in tiles}, stretches, models,
                               [t.image_id for t in vegas])


# ---------------------------------------------------------------------------------------------
# viz.imagery


def test_show_tile_draws(busy: spacenet.Tile, stretches: dict[str, Stretch]) -> None:
    fig, ax = plt.subplots()
    imagery.show_tile(ax, busy, stretches[busy.aoi])
    assert ax.images and ax.collections  # the image and the building outlines
    render(fig)


def test_plot_band_histograms_draws(busy: spacenet.Tile,
                                    stretches: dict[str, Stretch]) -> None:
    stretch = stretches[busy.aoi]
    with rasterio.open(busy.image_path) as src:
        raw = src.read(list(stretch.bands))
    fig, ax = plt.subplots()
    imagery.plot_band_histograms(ax, raw, stretch)
    assert drawn_on(ax) and len(ax.patches) >= 3  # a histogram per band
    render(fig)


def test_plot_city_tiles_draws(tiles: list[spacenet.Tile],
                               stretches: dict[str, Stretch]) -> None:
    # Two cities, the second one tile short: a full row and a row with an empty cell.
    shown = [t for t in tiles if t.aoi == "AOI_2_Vegas"] + [
        t for t in tiles if t.aoi == "AOI_3_Paris"][:2]
    fig = imagery.plot_city_tiles(shown, stretches, per_city=3)
    assert sum(bool(ax.images) for ax in fig.axes) == len(shown)
    render(fig)


def test_plot_stretch_comparison_draws(busy: spacenet.Tile,
                                       stretches: dict[str, Stretch]) -> None:
    render(imagery.plot_stretch_comparison(busy, stretches[busy.aoi]))


def test_plot_building_sizes_draws(demo_root: Path) -> None:
    render(imagery.plot_building_sizes(spacenet.building_table(demo_root)))


def test_plot_split_map_draws(chipped: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    _, index = chipped
    table = splits.make_splits(index, tmp_path / "splits.csv", seed=0, block_tiles=2)
    render(imagery.plot_split_map(table))


# ---------------------------------------------------------------------------------------------
# viz.downloads


def test_plot_manifest_counts_draws() -> None:
    render(downloads.plot_manifest_counts(load_manifest()))


# ---------------------------------------------------------------------------------------------
# viz.chipping


def test_chipping_plot_chip_grid_draws(busy: spacenet.Tile,
                                       stretches: dict[str, Stretch]) -> None:
    render(chipping.plot_chip_grid(busy, stretches[busy.aoi], CHIP, OVERLAP))


def test_plot_stretch_histograms_draws(busy: spacenet.Tile,
                                       stretches: dict[str, Stretch]) -> None:
    render(chipping.plot_stretch_histograms(busy, stretches[busy.aoi]))


def test_plot_seam_draws(tiles: list[spacenet.Tile], chipped: tuple[Path, pd.DataFrame]) -> None:
    chips_dir, index = chipped
    tile, seam = chipping.find_seam(tiles, CHIP, OVERLAP)
    render(chipping.plot_seam(chips_dir, index, tile, seam))


# ---------------------------------------------------------------------------------------------
# viz.targets


def test_plot_mask_kinds_draws(tiles: list[spacenet.Tile],
                               stretches: dict[str, Stretch]) -> None:
    render(targets.plot_mask_kinds(targets.densest_tiles(tiles)[:2], stretches))


def test_plot_target_zoom_draws(busy: spacenet.Tile, stretches: dict[str, Stretch]) -> None:
    render(targets.plot_target_zoom(busy, stretches[busy.aoi]))


# ---------------------------------------------------------------------------------------------
# viz.scoring


def test_plot_iou_examples_draws() -> None:
    render(scoring.plot_iou_examples())


def test_plot_outcomes_draws(scored: ScoreResult, busy: spacenet.Tile,
                             stretches: dict[str, Stretch]) -> None:
    fig, ax = plt.subplots()
    scoring.plot_outcomes(ax, scored, busy.image_id, imagery.read_rgb(busy, stretches[busy.aoi]))
    assert ax.images and ax.collections  # the picture and the polygons
    render(fig)


def test_outcome_legend_draws() -> None:
    fig, _ = plt.subplots()
    scoring.outcome_legend(fig)
    assert len(fig.legends) == 1
    assert len(fig.legends[0].get_texts()) == len(scoring.STYLE)
    render(fig)


def test_plot_outcome_panels_draws(tiles: list[spacenet.Tile], scored: ScoreResult,
                                   busy: spacenet.Tile, stretches: dict[str, Stretch]) -> None:
    other = simulated_score(tiles, seed=5, miss=0.5)
    render(scoring.plot_outcome_panels([scored, other], busy.image_id,
                                       ["15 % missed", "50 % missed"],
                                       imagery.read_rgb(busy, stretches[busy.aoi])))


# ---------------------------------------------------------------------------------------------
# viz.predictions


class TruthGenerator:
    """A stand-in for SAM 2's automatic generator: each true building of the chip as a mask,
    plus a road-like strip and a background mask that the building filter drops."""

    def __init__(self, tile: spacenet.Tile) -> None:
        self.labels = spacenet.read_tile_labels(tile, pixel=True)

    def generate(self, chip: np.ndarray) -> list[dict]:
        """Masks in the generator's output format for the chip at the tile's corner."""
        shape = chip.shape[:2]
        instances = rasterize_instances(list(self.labels.geometry), shape)
        segments = [instances == i for i in np.unique(instances) if i > 0]
        road = np.zeros(shape, bool)
        road[120:124, 10:240] = True
        segments += [road, instances == 0]
        return [{"segmentation": s, "predicted_iou": 0.9 - 0.01 * i, "stability_score": 0.95}
                for i, s in enumerate(segments)]


def test_plot_auto_masks_draws(busy: spacenet.Tile, empty_tile: spacenet.Tile,
                               stretches: dict[str, Stretch]) -> None:
    shown, results_ = [], []
    for tile in (busy, empty_tile):
        chip = zero_shot.read_tile_chip(tile, stretches[tile.aoi], CHIP)
        auto = SimpleNamespace(generator=TruthGenerator(tile), device=torch.device("cpu"),
                               building=auto_masks.BuildingFilter())
        shown.append(chip)
        results_.append(auto_masks.auto_masks(auto, chip))
    assert len(results_[0].candidates) > 0 and len(results_[0].masks) > len(results_[0].candidates)
    render(predictions.plot_auto_masks(shown, results_, [busy.image_id, empty_tile.image_id]))


def test_predictions_plot_chip_grid_draws(busy: spacenet.Tile,
                                          stretches: dict[str, Stretch]) -> None:
    render(predictions.plot_chip_grid(imagery.read_rgb(busy, stretches[busy.aoi]), CHIP, OVERLAP))


def test_plot_probability_draws(busy: spacenet.Tile, stretches: dict[str, Stretch],
                                tmp_path: Path) -> None:
    prob_path = tmp_path / "prob.tif"
    with rasterio.open(busy.image_path) as src:
        profile = {**src.profile, "count": 1, "dtype": "float32", "nodata": None}
    with rasterio.open(prob_path, "w", **profile) as dst:
        dst.write(blurred_truth(busy, 3.0), 1)
    render(predictions.plot_probability(prob_path, imagery.read_rgb(busy, stretches[busy.aoi]),
                                        CHIP, OVERLAP, "blurred truth (not a model)"))


# ---------------------------------------------------------------------------------------------
# viz.curves


def run_metrics(steps: int, seed: int) -> pd.DataFrame:
    """A ``metrics.csv``-shaped table: a train row per step, a val row every tenth step."""
    rng = np.random.default_rng(seed)
    rows = []
    for step in range(1, steps + 1):
        progress = step / steps
        rows.append({"step": step, "epoch": step // 10, "split": "train",
                     "loss": 1.2 - 0.8 * progress + rng.normal(0, 0.05),
                     "pixel_iou": 0.2 + 0.5 * progress + rng.normal(0, 0.03),
                     "lr": 1e-4, "seconds": 0.5 * step})
        if step % 10 == 0:
            rows.append({"step": step, "epoch": step // 10, "split": "val",
                         "loss": 1.1 - 0.7 * progress, "pixel_iou": 0.6 * progress,
                         "f1": 0.5 * progress, "threshold": 0.5, "seconds": 0.5 * step})
    return pd.DataFrame(rows, columns=list(METRIC_COLUMNS))


def test_plot_curves_draws(tmp_path: Path) -> None:
    metrics = {}
    for seed, label in enumerate(("SAM 2", "U-Net")):
        run_dir = tmp_path / f"run{seed}"
        run_dir.mkdir()
        run_metrics(40, seed).to_csv(run_dir / runs.METRICS_FILE, index=False)
        metrics[label] = finetune.read_metrics(run_dir)  # as the book reads them
    render(curves.plot_curves(metrics, "two runs, same chips"))


def test_plot_before_after_draws(busy: spacenet.Tile,
                                 chipped: tuple[Path, pd.DataFrame]) -> None:
    chips_dir, index = chipped
    truth = footprint(busy)
    rows = index[index["image_id"] == busy.image_id]
    windows = [(r.row_off, r.col_off) for r in rows.itertuples()]
    covered = [truth[r:r + CHIP, c:c + CHIP].sum() for r, c in windows]
    chosen = rows.iloc[np.argsort(covered)[::-1][:2]]
    images = np.stack([np.moveaxis(chipping.read_chip_file(chips_dir / p), 0, -1)
                       for p in chosen["path"]])
    masks = np.stack([truth[r:r + CHIP, c:c + CHIP]
                      for r, c in zip(chosen["row_off"], chosen["col_off"], strict=True)])
    examples = Examples(images, masks, chosen["chip_id"].tolist())
    before = np.full(masks.shape, 0.5, dtype=np.float32)
    after = np.clip(ndimage.gaussian_filter(masks, (0, 3, 3)), 0, 1)
    render(curves.plot_before_after(examples, before, after))


def test_plot_cache_timing_draws() -> None:
    seconds = pd.Series({"no cache: encoder every step": 0.92,
                         "cache, first epoch (encode and write)": 1.05,
                         "cache, later epochs (read)": 0.11}, name="seconds per step")
    table = pd.DataFrame({"seconds per step": seconds})
    table["speed-up"] = table["seconds per step"].iloc[0] / table["seconds per step"]
    render(curves.plot_cache_timing(table, "CPU"))


# ---------------------------------------------------------------------------------------------
# viz.results


def test_show_headline_draws(headline: pd.DataFrame) -> None:
    html = results.show_headline(headline, "test").to_html()
    assert "XD_XD" in html and "—" in html and "scored on" not in html.split("</caption>")[1]
    assert not plt.get_fignums()


def test_plot_headline_draws(headline: pd.DataFrame) -> None:
    render(results.plot_headline(headline))


def test_plot_cross_city_draws(summary: pd.DataFrame) -> None:
    one_city = summary.iloc[[2]].reset_index(drop=True)
    summaries = {"AOI_2_Vegas": one_city, "AOI_3_Paris": one_city,
                 "AOI_5_Khartoum": one_city.drop(columns="f1_AOI_3_Paris")}  # one "n/a" cell
    matrix = analysis.cross_city_matrix(summaries)
    assert matrix.isna().sum().sum() == 1
    render(results.plot_cross_city(matrix, "one-city models (simulated scores)"))


def _answer_table() -> pd.DataFrame:
    """A side-by-side table as ``book.answer.side_by_side`` makes it (simulated scores)."""
    cities = ["Las Vegas", "Paris", "Shanghai", "Khartoum", "overall"]
    kinds = ["SAM 2 zero-shot", "SAM 2 fine-tuned", "U-Net", "2017 winner"]
    columns = pd.MultiIndex.from_product([["buildings (F1)", "roads (APLS)"], cities])
    values = np.linspace(0.0, 0.9, len(kinds) * len(columns)).reshape(len(kinds), -1)
    values[0, 5:] = np.nan  # a kind one task did not evaluate
    return pd.DataFrame(values, index=pd.Index(kinds, name="model"), columns=columns)


def test_show_answer_draws() -> None:
    html = results.show_answer(_answer_table()).to_html()
    assert "roads (APLS)" in html and "2017 winner" in html and "—" in html
    assert "0.000" in html and not plt.get_fignums()


def test_plot_answer_draws() -> None:
    fig = results.plot_answer(_answer_table())
    assert [ax.get_title() for ax in fig.axes] == ["buildings (F1)", "roads (APLS)"]
    # one colour per kind in both panels, even where a kind has no score
    assert all(len(ax.patches) == 3 * 5 for ax in fig.axes)
    render(fig)


def test_plot_size_study_draws(summary: pd.DataFrame) -> None:
    study = {size: summary.iloc[[1]].assign(seconds=seconds)
             for size, seconds in ((128, 4.0), (256, 9.0), (512, 30.0))}
    render(results.plot_size_study(analysis.size_study_table(study), "simulated study"))


def test_plot_f1_by_size_draws(tiles: list[spacenet.Tile], scored: ScoreResult) -> None:
    tables = {"15 % missed": analysis.f1_by_size(scored),
              "40 % missed": analysis.f1_by_size(simulated_score(tiles, seed=3, miss=0.4))}
    render(results.plot_f1_by_size(tables))


def test_plot_worst_tiles_draws(tiles: list[spacenet.Tile], scored: ScoreResult,
                                stretches: dict[str, Stretch]) -> None:
    worst = analysis.worst_tiles(scored)
    assert len(worst) == 4  # one per city
    render(results.plot_worst_tiles(scored, worst, {t.image_id: t for t in tiles}, stretches,
                                    "worst tile per city (simulated proposals)"))


# ---------------------------------------------------------------------------------------------
# viz.widgets


@pytest.mark.parametrize("which", ["busy", "empty"])
def test_draw_tile_draws(browser_data: widgets.BrowserData, busy: spacenet.Tile,
                         empty_tile: spacenet.Tile, which: str) -> None:
    image_id = (busy if which == "busy" else empty_tile).image_id
    fig, ax = plt.subplots()
    widgets.draw_tile(ax, browser_data, next(iter(browser_data.models)), image_id, 0.5)
    assert ax.images
    render(fig)


def test_static_view_draws(browser_data: widgets.BrowserData, busy: spacenet.Tile) -> None:
    fig = widgets.static_view(browser_data, busy.image_id)
    assert len(fig.axes) == len(browser_data.models) * len(widgets.STATIC_THRESHOLDS)
    render(fig)


@pytest.fixture
def displayed(monkeypatch: pytest.MonkeyPatch) -> list[Figure]:
    """Figures the widgets module displays, each rendered at once (before it is closed)."""
    shown: list[Figure] = []

    def display(obj: object) -> None:
        if isinstance(obj, Figure):
            obj.canvas.draw()
            shown.append(obj)

    monkeypatch.setattr(widgets, "display", display)
    return shown


def test_show_draws(browser_data: widgets.BrowserData, busy: spacenet.Tile,
                    displayed: list[Figure], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(widgets.FORCE_ENV, "0")  # a batch run: the static figure
    first = next(iter(browser_data.models))  # one model: static_view's grid is tested above
    one_model = dataclasses.replace(browser_data, models={first: browser_data.models[first]})
    widgets.show(one_model, busy.image_id)
    assert len(displayed) == 1
    assert len(displayed[0].axes) == len(widgets.STATIC_THRESHOLDS)


def test_browser_draws(browser_data: widgets.BrowserData, displayed: list[Figure]) -> None:
    box = widgets.browser(browser_data)
    _, tile = box.children[0].children  # city, tile
    model, threshold = box.children[1].children
    threshold.value = 0.7
    model.value = list(browser_data.models)[1]
    tile.value = browser_data.image_ids[-1]  # the tile without buildings
    assert len(displayed) >= 4  # the first view, then one per change
    assert all(drawn_on(fig.axes[0]) for fig in displayed)
