"""The U-Net baseline: monai's ``BasicUNet`` with footprint and contact output channels.

It stands in for the U-Net models that won SpaceNet 2 (they predicted footprint and a
separating channel too). It is built from scratch, with no pretrained weights, so nothing is
downloaded. The model takes the dataset's images (``B x 3 x H x W`` in 0..1, from
:func:`aerialsam.training.datasets.collate_unet`), normalises them with the same ImageNet
statistics as SAM 2, and returns logits ``B x C x H x W``: channel 0 footprint, channel 1
contact.

``BasicUNet`` halves the resolution four times, so H and W must be multiples of 16 (other
sizes are refused rather than padded silently) and at least 32 (its instance normalisation
needs more than one pixel at the bottom of the U).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets import BasicUNet
from torch import nn

from aerialsam.errors import InputError
from aerialsam.models.unet_sizes import SIZE_MULTIPLE
from aerialsam.models.variants import SAM2_MEAN, SAM2_STD

UNET_PRESETS: dict[str, tuple[int, ...]] = {
    "small": (16, 16, 32, 64, 128, 16),
    "standard": (32, 32, 64, 128, 256, 32),
}
"""Channel widths (``BasicUNet`` ``features``): ``small`` for CPU demos (about 0.5 M
parameters), ``standard`` is monai's default (about 2 M) for the GPU ``full`` profile."""

OUTPUT_CHANNELS: tuple[str, ...] = ("footprint", "contact")
"""What the output channels mean, in order (a third channel would be free for boundary)."""


class UNet(nn.Module):
    """``BasicUNet`` with input normalisation and an input size check."""

    def __init__(self, out_channels: int, features: Sequence[int]) -> None:
        """Build the network (weights from the current torch random state)."""
        super().__init__()
        self.net = BasicUNet(spatial_dims=2, in_channels=3, out_channels=out_channels,
                             features=tuple(features))
        self.register_buffer("mean", torch.tensor(SAM2_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(SAM2_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``B x C x H x W`` of images ``B x 3 x H x W`` in 0..1.

        Raises:
            InputError: not ``B x 3 x H x W``, or H or W not a multiple of 16 or below 32.
        """
        check_input(images.shape)
        return self.net((images - self.mean) / self.std)


def resized_call(unet: nn.Module, images: torch.Tensor, size: int | None) -> torch.Tensor:
    """The U-Net's logits of square ``images`` (B x 3 x S x S), computed at ``size`` px.

    The images are resized to ``size`` (bilinear, antialiased: a chip shrunk without it
    aliases thin roads and roof edges) and the logits back to S x S. ``None`` or ``size ==
    S``: the U-Net runs on the images as they are.
    """
    side = images.shape[-1]
    if size is None or size == side:
        return unet(images)
    small = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True)
    return F.interpolate(unet(small), size=images.shape[-2:], mode="bilinear",
                         align_corners=False)


def check_input(shape: Sequence[int]) -> None:
    """Refuse an input shape the U-Net cannot take.

    Raises:
        InputError: not ``B x 3 x H x W``, or H or W not a multiple of :data:`SIZE_MULTIPLE`
            or below twice that.
    """
    if len(shape) != 4 or shape[1] != 3:
        raise InputError("images", f"expected B x 3 x H x W, got {tuple(shape)}")
    height, width = shape[-2:]
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or min(height, width) < 2 * SIZE_MULTIPLE:
        raise InputError("images", f"U-Net input must be a multiple of {SIZE_MULTIPLE} px and at "
                                   f"least {2 * SIZE_MULTIPLE} px, got "
                                   f"{height} x {width}; choose a chip size such as 256 or 512")


def build_unet(out_channels: int = len(OUTPUT_CHANNELS),
               features: str | Sequence[int] = "small", seed: int = 0) -> UNet:
    """A freshly initialised U-Net; the same seed gives the same weights.

    The global torch random state is left as it was.

    Args:
        out_channels: output channels (2: footprint, contact).
        features: a preset name from :data:`UNET_PRESETS` or six channel widths.
        seed: the seed of the initial weights.

    Raises:
        InputError: an unknown preset, not six widths, or fewer than one output channel.
    """
    if isinstance(features, str):
        if features not in UNET_PRESETS:
            raise InputError("features", f"unknown U-Net preset {features!r}; choose one of "
                                         f"{sorted(UNET_PRESETS)}")
        features = UNET_PRESETS[features]
    if len(features) != 6 or min(features) < 1:
        raise InputError("features", f"need six positive channel widths, got {tuple(features)}")
    if out_channels < 1:
        raise InputError("out_channels", f"must be at least 1, got {out_channels}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet(out_channels, features)
