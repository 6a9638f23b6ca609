"""SAM 2.1's variant names, input-size rule and normalisation, without importing torch or sam2.

The command line declares its options from these, so ``aerialsam score --help`` does not pay
for loading the deep-learning stack.
"""

from __future__ import annotations

from aerialsam.errors import InputError

VARIANT_NAMES: tuple[str, ...] = ("tiny", "small", "base_plus", "large")
RANDOM = "random"
"""The checkpoint value asking for untrained weights (synthetic profiles only)."""
SIZE_MULTIPLE = 32
"""The Hiera trunk downsamples by 32 overall, so the input side must be a multiple of it."""
SAM2_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
SAM2_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
"""SAM 2's input normalisation (ImageNet mean and standard deviation, images in 0..1)."""


def check_image_size(image_size: int) -> int:
    """Return ``image_size`` if SAM 2 can run at it (a positive multiple of 32).

    Raises:
        InputError: any other value.
    """
    if image_size < SIZE_MULTIPLE or image_size % SIZE_MULTIPLE:
        raise InputError("--image-size", f"must be a positive multiple of {SIZE_MULTIPLE} "
                                         f"(e.g. 256, 512, 1024), got {image_size}")
    return image_size
