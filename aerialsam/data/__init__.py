"""Stage 1, ``raw/``: the SpaceNet datasets on disk, and how they get there.

The SpaceNet 2 layout and its labels (:mod:`~aerialsam.data.spacenet`), the data manifest
(:mod:`~aerialsam.data.manifest`), the anonymous S3 client (:mod:`~aerialsam.data.s3`),
downloads and their plans (:mod:`~aerialsam.data.download`,
:mod:`~aerialsam.data.download_plan`), safe tarball extraction (:mod:`~aerialsam.data.extract`),
the synthetic cities (:mod:`~aerialsam.data.demo`, :mod:`~aerialsam.data.demo_layouts`), the
SpaceNet 3 road layout and its labels (:mod:`~aerialsam.data.spacenet3`) and the synthetic road
cities (:mod:`~aerialsam.data.demo_roads`, :mod:`~aerialsam.data.demo_road_layouts`).
Imports only the kernel (``errors``, ``io``, ``config``).
"""

__all__ = ["demo", "demo_layouts", "demo_road_layouts", "demo_roads", "download",
           "download_plan", "extract", "manifest", "s3", "spacenet", "spacenet3"]
