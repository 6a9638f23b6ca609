"""Stage ``predictions/``: from a raster of any size to probabilities, polygons and CSVs.

Models seen as functions of chips (:mod:`~aerialsam.inference.chip_models`), streamed tiled
inference with blended chips (:mod:`~aerialsam.inference.tiling`), prompts in any CRS
(:mod:`~aerialsam.inference.prompts`), masks to polygons and the SpaceNet CSV
(:mod:`~aerialsam.inference.vectorize`), and prediction folders, one image at a time and
resumable (:mod:`~aerialsam.inference.prediction`).
"""

__all__ = ["chip_models", "prediction", "prompts", "tiling", "vectorize"]
