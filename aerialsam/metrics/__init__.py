"""The scores: SpaceNet 2 building F1 exactly as the official scorer, and pixel metrics.

:mod:`~aerialsam.metrics.building_f1` reproduces the SpaceNet 2 scorer (v2.0);
:mod:`~aerialsam.metrics.pixel` holds pixel IoU, precision and recall. A metric reads
proposals and truth, never a model: it imports the kernel, :mod:`aerialsam.data` and
:mod:`aerialsam.prep` only.
"""

__all__ = ["building_f1", "pixel"]
