"""The input sizes the U-Net takes, checked without loading torch.

The run configuration (which the command line builds) checks them before any model exists.
"""

from __future__ import annotations

from aerialsam.errors import InputError

SIZE_MULTIPLE = 16
"""Input height and width must be multiples of this (four 2x poolings)."""


def check_input_size(size: int | None) -> None:
    """Refuse a U-Net input side it cannot take (``None``, the chip's own side, is fine).

    Raises:
        InputError: a side not a multiple of :data:`SIZE_MULTIPLE` or below twice that.
    """
    if size is not None and (size % SIZE_MULTIPLE or size < 2 * SIZE_MULTIPLE):
        raise InputError("unet_input_size", f"must be a multiple of {SIZE_MULTIPLE} and at "
                                            f"least {2 * SIZE_MULTIPLE}, got {size}")
