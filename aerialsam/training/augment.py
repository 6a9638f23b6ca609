"""Seeded augmentations that keep an image and its masks aligned.

Geometric transforms (the 8 dihedral transforms of the square: 90-degree rotations and
flips, and a small zoom in or out cropped or padded back to the same size) move the image and
every mask together; colour jitter (brightness, contrast, saturation) changes the image only.
Every random choice is drawn from a :class:`numpy.random.Generator` passed in, and
:func:`rng_for` derives that generator from ``(seed, epoch, index)``: the same triple gives
the same augmented sample in any process, any worker, any order.

Images are uint8 (or float) arrays ``H x W x 3`` or ``3 x H x W``; masks are a dict of
``H x W`` arrays. Outputs keep the input layouts and dtypes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from aerialsam.errors import InputError

THIN_MASKS = ("contact", "road_centerline")
"""Mask kinds drawn as lines one or two pixels wide, which a zoom out must not break."""

N_DIHEDRAL = 8
"""Number of dihedral transforms of a square: 4 rotations, each with or without a flip."""

# ITU-R BT.601 luma weights, the usual grey for saturation jitter.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class AugmentConfig:
    """Which augmentations to apply and how strongly.

    Attributes:
        dihedral: draw one of the 8 dihedral transforms (rotations by 90 degrees and flips).
        brightness: brightness factor drawn from ``[1 - b, 1 + b]``.
        contrast: contrast factor drawn from ``[1 - c, 1 + c]`` (blend with the mean grey).
        saturation: saturation factor drawn from ``[1 - s, 1 + s]`` (blend with grey).
        scale: zoom factor range; ``(1.0, 1.0)`` disables the zoom.
    """

    dihedral: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    scale: tuple[float, float] = (0.9, 1.1)

    def __post_init__(self) -> None:
        """Refuse strengths that would make negative factors or an inverted zoom range."""
        for name in ("brightness", "contrast", "saturation"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise InputError(f"augment.{name}", f"must be in [0, 1), got {value}")
        low, high = self.scale
        if not 0 < low <= high:
            raise InputError("augment.scale", f"need 0 < low <= high, got {self.scale}")


def rng_for(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one sample: a function of ``(seed, epoch, index)`` only."""
    return np.random.default_rng([seed, epoch, index])


def dihedral(array: np.ndarray, k: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """Dihedral transform ``k`` (0-7) of ``array`` over ``axes``.

    Rotate ``k % 4`` quarter turns, then flip the first axis when ``k >= 4``. ``k = 0`` is the
    identity.

    Raises:
        InputError: ``k`` outside 0-7.
    """
    if not 0 <= k < N_DIHEDRAL:
        raise InputError("dihedral", f"transform index must be 0-7, got {k}")
    out = np.rot90(array, k % 4, axes=axes)
    if k >= 4:
        out = np.flip(out, axis=axes[0])
    return np.ascontiguousarray(out)


def channels_first(image: np.ndarray) -> bool:
    """Whether a 3-band image is ``3 x H x W`` (else ``H x W x 3``).

    Raises:
        InputError: not a 3-band image in either layout.
    """
    if image.ndim == 3 and image.shape[-1] == 3:
        return False
    if image.ndim == 3 and image.shape[0] == 3:
        return True
    raise InputError("image", f"expected H x W x 3 or 3 x H x W, got shape {image.shape}")


def color_jitter(image: np.ndarray, rng: np.random.Generator,
                 config: AugmentConfig) -> np.ndarray:
    """Random brightness, contrast and saturation of an ``H x W x 3`` image (same dtype out).

    uint8 images stay in 0..255 (rounded and clipped); float images are clipped to 0..1.
    """
    factors = [rng.uniform(1 - s, 1 + s)
               for s in (config.brightness, config.contrast, config.saturation)]
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    pixels = image.astype(np.float32) / scale
    pixels = pixels * factors[0]
    pixels = (pixels - pixels.mean()) * factors[1] + pixels.mean()
    grey = (pixels @ _LUMA)[..., None]
    pixels = (pixels - grey) * factors[2] + grey
    pixels = np.clip(pixels, 0.0, 1.0)
    if image.dtype == np.uint8:
        return np.rint(pixels * 255.0).astype(np.uint8)
    return pixels.astype(image.dtype)


def zoom(image: np.ndarray, masks: Mapping[str, np.ndarray], factor: float,
         rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Zoom an ``H x W x 3`` image (bilinear) and its masks (nearest) by ``factor``.

    The thin masks (:data:`THIN_MASKS`) are shrunk by the maximum of each output pixel's
    footprint instead: nearest neighbour drops whole rows and columns, which cuts a 1 px line
    into dashes. Then crop (zoom in) or zero-pad (zoom out) back to ``H x W`` at a random
    offset, the same for all.
    """
    height, width = image.shape[:2]
    new_h, new_w = max(1, round(height * factor)), max(1, round(width * factor))
    if (new_h, new_w) == (height, width):
        return image, dict(masks)
    # Crop offsets when zooming in; paste offsets (negative crop) when zooming out.
    dy = int(rng.integers(0, abs(new_h - height) + 1)) * (1 if new_h > height else -1)
    dx = int(rng.integers(0, abs(new_w - width) + 1)) * (1 if new_w > width else -1)
    resized = _resize(image.transpose(2, 0, 1), (new_h, new_w), "bilinear").transpose(1, 2, 0)
    out_image = _crop_or_pad(resized, dy, dx, height, width)
    out_masks = {kind: _crop_or_pad(_resize(mask[None], (new_h, new_w),
                                            "max" if factor < 1 and kind in THIN_MASKS
                                            else "nearest-exact")[0], dy, dx, height, width)
                 for kind, mask in masks.items()}
    return out_image, out_masks


def _resize(array: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize a ``C x H x W`` array with torch, keeping its dtype (uint8 rounded).

    ``mode`` is an ``F.interpolate`` mode, or ``max`` (shrinking only): each output pixel is
    the maximum of the input pixels it covers.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]
    if mode == "max":
        out = F.adaptive_max_pool2d(tensor, size)[0].numpy()
    else:
        extra = {"align_corners": False} if mode == "bilinear" else {}
        out = F.interpolate(tensor, size=size, mode=mode, **extra)[0].numpy()
    if np.issubdtype(array.dtype, np.integer) or array.dtype == bool:
        out = np.rint(out)
    return out.astype(array.dtype)


def _crop_or_pad(array: np.ndarray, dy: int, dx: int, height: int, width: int) -> np.ndarray:
    """Cut ``height x width`` from ``array`` starting at ``(dy, dx)``.

    Negative offsets paste ``array`` at ``(-dy, -dx)`` into zeros instead (one axis may crop
    while the other pads).
    """
    out = np.zeros((height, width) + array.shape[2:], dtype=array.dtype)
    src_y, dst_y = max(dy, 0), max(-dy, 0)
    src_x, dst_x = max(dx, 0), max(-dx, 0)
    rows = min(height - dst_y, array.shape[0] - src_y)
    cols = min(width - dst_x, array.shape[1] - src_x)
    out[dst_y:dst_y + rows, dst_x:dst_x + cols] = array[src_y:src_y + rows, src_x:src_x + cols]
    return out


def augment(image: np.ndarray, masks: Mapping[str, np.ndarray], rng: np.random.Generator,
            config: AugmentConfig | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Augment an image and its masks together; colour jitter touches the image only.

    The draws happen in a fixed order (dihedral index, zoom factor and offsets, colour
    factors), so a generator in the same state gives the same output.

    Args:
        image: ``H x W x 3`` or ``3 x H x W``, uint8 or float in 0..1.
        masks: kind -> ``H x W`` mask (any dtype) on the image's grid.
        rng: the sample's generator (see :func:`rng_for`).
        config: augmentation strengths (default :class:`AugmentConfig`).

    Returns:
        The augmented image (same layout and dtype) and masks (same dtypes).

    Raises:
        InputError: an image that is not 3-band, or a mask of another size.
    """
    config = config or AugmentConfig()
    first = channels_first(image)
    hwc = image.transpose(1, 2, 0) if first else image
    for kind, mask in masks.items():
        if mask.shape != hwc.shape[:2]:
            raise InputError(kind, f"mask shape {mask.shape} differs from image {hwc.shape[:2]}")
    out_masks = dict(masks)
    if config.dihedral:
        k = int(rng.integers(0, N_DIHEDRAL))
        hwc = dihedral(hwc, k)
        out_masks = {kind: dihedral(mask, k) for kind, mask in out_masks.items()}
    low, high = config.scale
    if high > low or low != 1.0:
        hwc, out_masks = zoom(hwc, out_masks, float(rng.uniform(low, high)), rng)
    hwc = color_jitter(hwc, rng, config)
    out_image = np.ascontiguousarray(hwc.transpose(2, 0, 1)) if first else hwc
    return out_image, out_masks
