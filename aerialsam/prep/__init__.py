"""Stages 2 and 3, ``chips/``, ``masks/`` and ``splits.csv``: raw tiles made ready to learn from.

The per-AOI 11-bit stretch (:mod:`~aerialsam.prep.stretch`), the chip grid and georeferenced
chips (:mod:`~aerialsam.prep.chips`) with their index (:mod:`~aerialsam.prep.chip_index`),
building masks on any raster grid (:mod:`~aerialsam.prep.masks`), road masks in metres
(:mod:`~aerialsam.prep.road_masks`), both for every chip of an index
(:mod:`~aerialsam.prep.chip_masks`), and seeded train/val/test splits
(:mod:`~aerialsam.prep.splits`). Imports the kernel and :mod:`aerialsam.data`.
"""

__all__ = ["chip_index", "chip_masks", "chips", "masks", "road_masks", "splits", "stretch"]
