"""Zero-shot and prompted SAM 2 on chips: the chip models that tiled inference runs.

Three ways to get building probabilities from SAM 2, each a
:class:`~aerialsam.inference.tiling.ChipModel` (stretched uint8 chips in, probabilities out),
so :func:`aerialsam.inference.tiling.predict_raster` runs any of them over any raster:

- :class:`Sam2Prompted`: box or point prompts (:class:`~aerialsam.inference.prompts.Prompts`,
  in the raster's pixels); a pixel's probability is the highest any prompt's mask gives it.
  The chips of a batch share one image-encoder pass.
- :class:`~aerialsam.inference.auto_masks.Sam2Auto`: SAM 2's automatic mask generator (a
  grid of point prompts, filtered by predicted IoU and stability) turned into building
  candidates (:mod:`aerialsam.inference.auto_masks`); each is painted with its predicted IoU.
- :class:`Sam2Semantic`: no prompt at all, one dense mask per chip: the output of a model
  fine-tuned in the ``none`` prompt mode (zero-shot, this mode means little).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import torch
from rasterio.windows import Window
from sam2.modeling.sam2_base import SAM2Base
from torch import nn

from aerialsam.data.spacenet import tile_at
from aerialsam.device import autocast
from aerialsam.errors import InputError
from aerialsam.inference.auto_masks import AutoSettings, BuildingFilter, Sam2Auto
from aerialsam.inference.prediction import ChipModelFactory
from aerialsam.inference.prompts import (
    ORACLE_WARNING,
    PROMPT_KINDS,
    Prompts,
    oracle_prompts,
    raster_prompts,
    require_prompts,
)
from aerialsam.inference.tiling import NO_FLIP, Flip
from aerialsam.io import open_raster
from aerialsam.models.sam2_calls import (
    Features,
    decode_prompts,
    decode_semantic,
    encode,
    prepare_images,
    scale_xy,
    upscale,
)
from aerialsam.models.unet import resized_call
from aerialsam.prep.chips import Source

log = logging.getLogger(__name__)

PROMPT_CHUNK = 32
"""Prompts decoded at once on one chip: bounds the (prompts x chip) logits in memory."""
REUSE_MARGIN = 8
"""A box is decoded for reuse in a chip that holds it with this many pixels to spare."""
REUSE_FLOOR = 1e-3
"""A reused mask keeps the pixels at or above this probability (the rest is ~0 anyway)."""


def _device(model: SAM2Base) -> torch.device:
    return next(model.parameters()).device


class _Sam2ChipModel:
    """Shared: the model, its device and one encoder pass over a batch of chips."""

    def __init__(self, model: SAM2Base) -> None:
        self.model = model
        self.device = _device(model)

    def encode(self, chips: np.ndarray) -> Features:
        """Image-encoder features of a (B, H, W, 3) uint8 batch."""
        return encode(self.model, prepare_images(chips, self.model.image_size, self.device))


class Sam2Semantic(_Sam2ChipModel):
    """A chip model with no prompt: dense masks per chip (the fine-tuned ``none`` mode)."""

    def __init__(self, model: SAM2Base, channels: tuple[int, ...] = (0,)) -> None:
        """Keep the model and the channels to return.

        Args:
            model: the SAM 2 model.
            channels: the decoder outputs to return: ``(0,)`` the footprint, ``(0, 1)`` also
                the contact between buildings (see
                :func:`~aerialsam.models.sam2_calls.decode_semantic`).
        """
        super().__init__(model)
        self.channels = list(channels)

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        """(B, C, H, W) probabilities (see :class:`~aerialsam.inference.tiling.ChipModel`)."""
        with torch.inference_mode(), autocast(self.device):
            logits, _ = decode_semantic(self.model, self.encode(chips))
        logits = logits[:, self.channels]
        return torch.sigmoid(upscale(logits, *chips.shape[1:3])).cpu().numpy()


class Sam2Prompted(_Sam2ChipModel):
    """A chip model answering box or point prompts given in the raster's pixels.

    Overlapping chips share most boxes: in a 650 px tile cut into 512 px chips most boxes lie
    whole in all four, and the mask decoder is most of the work on a CPU. With ``reuse``, a
    box is decoded once, in the first chip that holds it whole with a margin of
    :data:`REUSE_MARGIN` px (its mask then has the box's whole context), and that mask, kept
    in raster pixels, is pasted into the later chips that show the box. Chips before it that
    show the box clipped decode their part, as without reuse. Points, whose mask has no bound,
    and flipped chips (test-time augmentation) are decoded in every chip.
    """

    def __init__(self, model: SAM2Base, prompts: Prompts, multimask: bool | None = None,
                 reuse: bool = True) -> None:
        """Keep the model and the raster's prompts.

        Args:
            model: the SAM 2 model.
            prompts: the raster's prompts; each chip uses those on it.
            multimask: for points, decode three masks and keep the one of highest predicted
                IoU (a single point is ambiguous: roof, building or block); boxes use one
                mask. ``None``: multimask for points only.
            reuse: decode each box once and reuse its mask in later chips (see the class).
        """
        super().__init__(model)
        self.prompts = prompts
        self.multimask = prompts.kind == "point" if multimask is None else multimask
        self.reuse = reuse and prompts.kind == "box"
        self._decoded: dict[int, tuple[int, int, np.ndarray]] = {}

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        """Probabilities of each chip (see :class:`~aerialsam.inference.tiling.ChipModel`)."""
        if not self.reuse or flip != NO_FLIP:
            return self._each_chip(chips, windows, flip)
        out = np.zeros(chips.shape[:3], dtype=np.float32)
        on_chips = [self.prompts.on_chip(window) for window in windows]
        self._forget(min(window.row_off for window in windows))
        if all(set(index.tolist()) <= self._decoded.keys() for index, _ in on_chips):
            for i, (index, _) in enumerate(on_chips):  # every box known: skip the encoder
                self._paste(out[i], windows[i], index)
            return out
        with torch.inference_mode(), autocast(self.device):
            feats = self.encode(chips)
            for i, (index, local) in enumerate(on_chips):
                new = np.array([j not in self._decoded for j in index.tolist()], dtype=bool)
                self._decode_new(out[i], feats.select(i), windows[i], index[new], local[new])
                self._paste(out[i], windows[i], index[~new])
        return out

    def _each_chip(self, chips: np.ndarray, windows: Sequence[Window],
                   flip: Flip) -> np.ndarray:
        """Every prompt decoded in every chip that shows it."""
        height, width = chips.shape[1:3]
        out = np.zeros(chips.shape[:3], dtype=np.float32)
        local_prompts = [self.prompts.in_chip(window, flip) for window in windows]
        if not any(len(local) for local in local_prompts):
            return out  # no prompt on these chips: skip the encoder
        with torch.inference_mode(), autocast(self.device):
            feats = self.encode(chips)
            for i, local in enumerate(local_prompts):
                for start in range(0, len(local), PROMPT_CHUNK):
                    part = local[start:start + PROMPT_CHUNK]
                    probs = self._masks(feats.select(i), part, height, width)
                    out[i] = np.maximum(out[i], probs.max(axis=0))
        return out

    def _decode_new(self, out: np.ndarray, feats: Features, window: Window,
                    index: np.ndarray, local: np.ndarray) -> None:
        """Decode boxes not seen before into ``out``; keep those whole in this chip."""
        height, width = out.shape
        inside = self._whole(window, index)
        for start in range(0, len(index), PROMPT_CHUNK):
            probs = self._masks(feats, local[start:start + PROMPT_CHUNK], height, width)
            np.maximum(out, probs.max(axis=0), out=out)
            for j, prob, whole in zip(index[start:start + PROMPT_CHUNK], probs,
                                      inside[start:start + PROMPT_CHUNK], strict=True):
                if whole:
                    self._keep(int(j), window, prob)

    def _whole(self, window: Window, index: np.ndarray) -> np.ndarray:
        """Which of the boxes lie in the chip with :data:`REUSE_MARGIN` px to spare."""
        x0, y0, x1, y1 = self.prompts.xy[index].T
        left, top = window.col_off + REUSE_MARGIN, window.row_off + REUSE_MARGIN
        right = window.col_off + window.width - REUSE_MARGIN
        bottom = window.row_off + window.height - REUSE_MARGIN
        return (x0 >= left) & (y0 >= top) & (x1 <= right) & (y1 <= bottom)

    def _keep(self, j: int, window: Window, prob: np.ndarray) -> None:
        """Box ``j``'s mask, cropped to where it is above :data:`REUSE_FLOOR`, in raster pixels."""
        rows, cols = np.nonzero(prob >= REUSE_FLOOR)
        if not len(rows):
            self._decoded[j] = (0, 0, np.zeros((0, 0), np.float32))
            return
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        self._decoded[j] = (window.row_off + int(r0), window.col_off + int(c0),
                            prob[r0:r1, c0:c1].copy())

    def _paste(self, out: np.ndarray, window: Window, index: np.ndarray) -> None:
        """The kept masks of boxes ``index``, where they fall on this chip, into ``out``."""
        for j in index.tolist():
            row, col, crop = self._decoded[j]
            top, left = max(row, window.row_off), max(col, window.col_off)
            bottom = min(row + crop.shape[0], window.row_off + out.shape[0])
            right = min(col + crop.shape[1], window.col_off + out.shape[1])
            if top >= bottom or left >= right:
                continue
            target = out[top - window.row_off:bottom - window.row_off,
                         left - window.col_off:right - window.col_off]
            np.maximum(target, crop[top - row:bottom - row, left - col:right - col],
                       out=target)

    def _forget(self, top_row: int) -> None:
        """Drop the masks that end above ``top_row``: the chips come row by row, downwards."""
        for j in [j for j, (row, _, crop) in self._decoded.items()
                  if row + crop.shape[0] <= top_row]:
            del self._decoded[j]

    def _masks(self, feats: Features, xy: np.ndarray, height: int, width: int) -> np.ndarray:
        """The probability of each prompt's mask on one chip, ``(N, H, W)``."""
        xy = torch.from_numpy(scale_xy(xy, height, width, self.model.image_size)).to(self.device)
        if self.prompts.kind == "box":
            logits, iou = decode_prompts(self.model, feats, boxes=xy, multimask=self.multimask)
        else:
            logits, iou = decode_prompts(self.model, feats, points=xy[:, None, :],
                                         multimask=self.multimask)
        best = iou.argmax(dim=1)
        logits = logits[torch.arange(len(logits), device=logits.device), best][:, None]
        return torch.sigmoid(upscale(logits, height, width))[:, 0].float().cpu().numpy()


def sam2_factory(model: SAM2Base, mode: str, sources: Sequence[Source],
                 prompts: gpd.GeoDataFrame | None = None, prompt_source: str | Path = "prompts",
                 auto: AutoSettings = AutoSettings(),
                 building: BuildingFilter = BuildingFilter()) -> ChipModelFactory:
    """The chip model of each raster for a zero-shot SAM 2 run in ``mode``.

    Args:
        model: the SAM 2 model.
        mode: ``auto`` (automatic masks), ``box`` or ``point`` (``prompts`` in any CRS, or
            pixels), ``oracle`` (box prompts from each SpaceNet tile's ground truth: an
            upper bound), or ``none`` (no prompt; for fine-tuned models).
        sources: the rasters of the run; prompts must fall on at least one of them.
        prompts: the prompt geometries for ``box``/``point``.
        prompt_source: the prompt file, named in errors.
        auto: the automatic mask generator's settings (``auto`` mode).
        building: the filter that keeps building candidates of the automatic masks.

    Raises:
        InputError: an unknown mode, missing prompts, prompts on none of the rasters, or
            ``oracle`` for rasters without SpaceNet labels.
    """
    if mode == "auto":
        chip_model = Sam2Auto(model, auto, building)
        return lambda source, src: chip_model
    if mode == "none":
        semantic = Sam2Semantic(model, channels=(0, 1))
        return lambda source, src: semantic
    if mode == "oracle":
        return _oracle_factory(model, sources)
    if mode not in PROMPT_KINDS:
        raise InputError("--mode", f"unknown mode {mode!r}; use auto, box, point or oracle")
    if prompts is None:
        raise InputError("--prompts", f"--mode {mode} needs a prompt file")
    per_source = {s.path: _raster_prompts(prompts, mode, s.path, prompt_source) for s in sources}
    if not any(len(p) for p in per_source.values()):
        only = sources[0].path if len(sources) == 1 else Path(sources[0].path).parent
        require_prompts(Prompts(mode, np.zeros((0, 4))), len(prompts), prompt_source, only)
    return lambda source, src: Sam2Prompted(model, per_source[source.path])


def _raster_prompts(frame: gpd.GeoDataFrame, kind: str, path: Path,
                    prompt_source: str | Path) -> Prompts:
    with open_raster(path) as src:
        return raster_prompts(frame, kind, src.transform, src.crs, src.width, src.height,
                              prompt_source)


def _oracle_factory(model: SAM2Base, sources: Sequence[Source]) -> ChipModelFactory:
    tiles = {}
    for source in sources:
        with contextlib.suppress(InputError):  # not a SpaceNet tile: reported just below
            tiles[source.path] = tile_at(source.path)
    missing = [s.path for s in sources if s.path not in tiles or tiles[s.path].geojson_path is None]
    if missing:
        raise InputError(missing[0], "--mode oracle needs SpaceNet 2 tiles with building "
                                     "GeoJSON labels (prompts come from the ground truth)")
    log.warning(ORACLE_WARNING, len(sources))
    return lambda source, src: Sam2Prompted(model, oracle_prompts(tiles[source.path]))


class UNetChips:
    """The U-Net as a :class:`~aerialsam.inference.tiling.ChipModel`.

    It returns its two channels (footprint and contact, or road and centre line).
    """

    def __init__(self, model: nn.Module, input_size: int | None = None) -> None:
        """Wrap a trained U-Net; chips go to the device its parameters are on.

        Args:
            model: the U-Net.
            input_size: the side it was trained to see chips at (``None``: the chip's own).
        """
        self.model = model
        self.device = next(model.parameters()).device
        self.input_size = input_size

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        """(B, 2, H, W) footprint and contact probabilities of uint8 chips (B, H, W, 3)."""
        images = torch.from_numpy(np.ascontiguousarray(chips)).to(self.device)
        images = images.permute(0, 3, 1, 2).float() / 255.0
        with torch.inference_mode():
            logits = resized_call(self.model, images, self.input_size)
        return torch.sigmoid(logits.float()).cpu().numpy()
