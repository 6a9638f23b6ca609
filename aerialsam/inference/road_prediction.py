"""Predict roads: probability GeoTIFFs, road graphs with lengths, SpaceNet 3 road CSVs.

Output folder (the run itself is :func:`aerialsam.inference.prediction.predict_images` with
:class:`RoadOutputs`: the same checks, stretch, skipping of finished images and timing)::

    OUT_DIR/predict.json              the parameters (a rerun must match them)
    OUT_DIR/stretch.json              the per-AOI stretch the rasters were read with
    OUT_DIR/prob/<image_id>.tif       float32 road probability (band 1; band 2 the centre
                                      line, for models that learned it) on the image's grid
    OUT_DIR/roads/<image_id>.gpkg     the road graph's sections as georeferenced LineStrings,
                                      with ``length_m`` and ``length_px`` (QGIS, GDAL)
    OUT_DIR/csv/<image_id>.csv        the image's roads as SpaceNet 3 rows (``ImageId,
                                      WKT_Pix``, pixel coordinates)
    OUT_DIR/roads.csv                 all images of the run, ready for ``aerialsam score``
    OUT_DIR/seconds.json              how long each image took (read, infer, stitch, graph)

The graph is drawn from the probabilities in strips
(:func:`aerialsam.inference.road_vectorize.read_road_graph`), so an orthomosaic's roads
never need its whole probability map in memory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from affine import Affine
from rasterio.crs import CRS

from aerialsam.inference.prediction import combine_csvs
from aerialsam.inference.road_graph import DEFAULT_OPTIONS, RoadGraphOptions
from aerialsam.inference.road_sections import road_frame, road_rows, write_roads_vector
from aerialsam.inference.road_vectorize import read_road_graph
from aerialsam.io import atomic_path
from aerialsam.prep.chips import Source

ROADS_FILE = "roads.csv"
"""The combined SpaceNet 3 CSV of a road prediction run."""


def road_output_paths(out_dir: Path, image: str) -> dict[str, Path]:
    """The probability, road graph and CSV files of one image in a road prediction folder."""
    return {"prob": out_dir / "prob" / f"{image}.tif",
            "roads": out_dir / "roads" / f"{image}.gpkg",
            "csv": out_dir / "csv" / f"{image}.csv"}


@dataclass(frozen=True)
class RoadOutputs:
    """The road graph (GeoPackage) and SpaceNet 3 rows (CSV) of each image.

    Attributes:
        graph: threshold and clean-up of mask to graph (a run's validated setting).
        combined: the file name of the combined CSV.
    """

    graph: RoadGraphOptions = DEFAULT_OPTIONS
    combined: str = ROADS_FILE

    def paths(self, out_dir: Path, image: str) -> dict[str, Path]:
        """See :func:`road_output_paths`."""
        return road_output_paths(out_dir, image)

    def params(self) -> dict[str, Any]:
        """The graph options, recorded in ``predict.json``."""
        return {"roads": dataclasses.asdict(self.graph)}

    def write(self, source: Source, paths: dict[str, Path], transform: Affine,
              crs: CRS | None) -> None:
        """The image's road graph, as a GeoPackage of LineStrings and as SpaceNet 3 rows."""
        graph = read_road_graph(paths["prob"], self.graph)
        rows = road_rows(source.image_id, graph, paths["prob"])
        paths["csv"].parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(paths["csv"]) as tmp:
            pd.DataFrame(rows, columns=["ImageId", "WKT_Pix"]).to_csv(tmp, index=False)
        # predict_images opens every source with its CRS required, so the roads have a map
        write_roads_vector(road_frame(graph, transform, crs), paths["roads"])

    def combine(self, out_dir: Path, image_ids: list[str]) -> None:
        """Write ``roads.csv``."""
        combine_csvs(out_dir, [self.paths(out_dir, i)["csv"] for i in image_ids],
                     self.combined)
