"""aerialsam: building segmentation in SpaceNet 2 aerial imagery with SAM 2.

The package backs the aerialsam book. Each module has one job (see DESIGN.md); the notebooks
and the ``aerialsam`` command are thin layers over them.
"""

from aerialsam.errors import AerialSamError, InputError

__version__ = "0.1.0"

__all__ = ["AerialSamError", "InputError", "__version__"]
