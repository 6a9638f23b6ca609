"""SAM 2.1's variants, input-size rule and normalisation, without importing torch or sam2.

The command line declares its options from these, so ``aerialsam score --help`` does not pay
for loading the deep-learning stack.
"""

from __future__ import annotations

from dataclasses import dataclass

from aerialsam.errors import InputError

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


@dataclass(frozen=True)
class Variant:
    """One SAM 2.1 model size.

    Attributes:
        name: ``tiny``, ``small``, ``base_plus`` or ``large``.
        config: the config name packaged with ``sam2`` (a Hydra name, not a file path).
        embed_dim: channels of the Hiera patch embedding (tells variants apart in a file).
        blocks: number of Hiera blocks (tells tiny from small, which share ``embed_dim``).
    """

    name: str
    config: str
    embed_dim: int
    blocks: int

    @property
    def filename(self) -> str:
        """The official checkpoint file name, e.g. ``sam2.1_hiera_tiny.pt``."""
        return f"sam2.1_hiera_{self.name}.pt"


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("tiny", "configs/sam2.1/sam2.1_hiera_t.yaml", 96, 12),
    Variant("small", "configs/sam2.1/sam2.1_hiera_s.yaml", 96, 16),
    Variant("base_plus", "configs/sam2.1/sam2.1_hiera_b+.yaml", 112, 24),
    Variant("large", "configs/sam2.1/sam2.1_hiera_l.yaml", 144, 48),
)}


VARIANT_NAMES: tuple[str, ...] = tuple(VARIANTS)


def get_variant(name: str) -> Variant:
    """The :class:`Variant` called ``name``.

    Raises:
        InputError: an unknown variant name.
    """
    if name not in VARIANTS:
        raise InputError("--variant", f"unknown SAM 2 variant {name!r}; "
                                      f"choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]
