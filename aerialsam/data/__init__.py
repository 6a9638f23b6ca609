"""Stage 1, ``raw/``: the SpaceNet datasets on disk, and how they get there.

The SpaceNet 2 layout and its labels (:mod:`~aerialsam.data.spacenet`), the data manifest
(:mod:`~aerialsam.data.manifest`), the anonymous S3 client (:mod:`~aerialsam.data.s3`),
downloads and their plans (:mod:`~aerialsam.data.download`,
:mod:`~aerialsam.data.download_plan`), safe tarball extraction (:mod:`~aerialsam.data.extract`)
and the synthetic cities (:mod:`~aerialsam.data.demo`, :mod:`~aerialsam.data.demo_layouts`).
Imports only the kernel (``errors``, ``io``, ``config``).
"""

__all__ = ["demo", "demo_layouts", "download", "download_plan", "extract", "manifest", "s3",
           "spacenet"]
