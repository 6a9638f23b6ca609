"""Stage ``predictions/``: from any raster to probabilities, polygons, road graphs and CSVs.

Models seen as functions of chips (:mod:`~aerialsam.inference.chip_models`; SAM 2's automatic
masks and their filters in :mod:`~aerialsam.inference.auto_masks`), streamed tiled
inference with blended chips (:mod:`~aerialsam.inference.tiling`), prompts in any CRS
(:mod:`~aerialsam.inference.prompts`), masks to polygons and the SpaceNet CSV
(:mod:`~aerialsam.inference.vectorize`), road probabilities to road graphs and their clean-up
(:mod:`~aerialsam.inference.road_graph`), strip by strip for large rasters
(:mod:`~aerialsam.inference.road_vectorize`), and on to the SpaceNet 3 CSV and a GeoPackage
(:mod:`~aerialsam.inference.road_sections`), and prediction folders, one image at a time and
resumable (:mod:`~aerialsam.inference.prediction`).
"""

__all__ = ["auto_masks", "chip_models", "prediction", "prompts", "road_graph", "road_sections",
           "road_vectorize", "tiling", "vectorize"]
