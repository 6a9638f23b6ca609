"""aerialsam: buildings and roads in SpaceNet aerial imagery with SAM 2.

The package backs the aerialsam book; the notebooks and the ``aerialsam`` command are thin
layers over it. Its subpackages follow the data, one stage each, and a module imports only
from its own subpackage or from those above it in this list (``make lint`` checks the order
with import-linter):

1. kernel, at the top level: :mod:`~aerialsam.errors`, :mod:`aerialsam.inputs` (every file
   from users read and checked in one place: the encoding rule, CSV tables, GeoJSON and WKT,
   JSON and YAML against a schema), :mod:`~aerialsam.io` (atomic writes, rasters),
   :mod:`~aerialsam.config` (run profiles, the folder-per-stage layout),
   :mod:`~aerialsam.device` (device and mixed-precision choice); inside the kernel,
   ``inputs`` imports only ``errors``, and ``io``, ``config`` and ``device`` may import both;
2. :mod:`aerialsam.data`: SpaceNet layouts, manifest, downloads, synthetic cities (``raw/``);
3. :mod:`aerialsam.prep`: stretch, chips, masks, splits (``chips/``, ``masks/``,
   ``splits.csv``);
4. :mod:`aerialsam.metrics`: the SpaceNet metrics and pixel metrics;
5. :mod:`aerialsam.models`: SAM 2 and the U-Net;
6. :mod:`aerialsam.inference`: tiled prediction, prompts, polygons (``predictions/``);
7. :mod:`aerialsam.training`: datasets, losses, the training loop, runs (``runs/``);
8. :mod:`aerialsam.evaluation`: per-city scores and their analyses (``reports/``);
9. :mod:`aerialsam.viz`: figures and widgets;
10. :mod:`aerialsam.book`: what only the book needs;
11. :mod:`aerialsam.cli`: the ``aerialsam`` command.

CONTRIBUTING.md says where a new model, metric, figure or command goes.
"""

from aerialsam.errors import AerialSamError, InputError

__version__ = "0.1.0"

__all__ = ["AerialSamError", "InputError", "__version__"]
