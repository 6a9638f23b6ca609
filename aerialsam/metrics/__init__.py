"""The scores: SpaceNet 2 building F1 and SpaceNet 3 APLS as the official scorers; pixels.

:mod:`~aerialsam.metrics.building_f1` reproduces the SpaceNet 2 scorer (v2.0);
:mod:`~aerialsam.metrics.apls` the SpaceNet 3 scorer (Java), from the modules it builds on:
:mod:`~aerialsam.metrics.road_csv` (reading and the scorer's refusals),
:mod:`~aerialsam.metrics.road_graph` (graphs and control points),
:mod:`~aerialsam.metrics.road_snap` and :mod:`~aerialsam.metrics.road_copy` (snapping one
graph's nodes onto the other), :mod:`~aerialsam.metrics.road_routes` (one direction) and
:mod:`~aerialsam.metrics.road_numerics` (the scorer's arithmetic, bit for bit);
:mod:`~aerialsam.metrics.pixel` holds pixel IoU, precision and recall. A metric reads
proposals and truth, never a model: it imports the kernel, :mod:`aerialsam.data` and
:mod:`aerialsam.prep` only.
"""

__all__ = ["apls", "building_f1", "pixel", "road_copy", "road_csv", "road_graph", "road_numerics",
           "road_routes", "road_snap"]
