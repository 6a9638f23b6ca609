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
    prompt_chunk,
    scale_xy,
    upscale,
)
from aerialsam.models.unet import resized_call
from aerialsam.prep.chips import Source

log = logging.getLogger(__name__)

REUSE_MARGIN = 8
"""A box is decoded for reuse in a chip that holds it with this many pixels to spare."""
REUSE_FLOOR = 1e-3
"""A reused mask keeps the pixels at or above this probability (the rest is ~0 anyway)."""

Part = tuple[float, float, float, float]
"""The part of a box a chip shows, in raster pixels: the box clipped to the chip."""
Kept = tuple[int, int, np.ndarray, float]
"""A decoded mask kept for other chips: its top row and left column, its probabilities (cropped
to where they are above :data:`REUSE_FLOOR`), and the bottom of the box part it answers."""
Shown = tuple[np.ndarray, np.ndarray, list[Part], np.ndarray]
"""The boxes a chip shows: indices, chip coordinates, parts, whether reuse may start there."""


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
    box's mask is decoded once and pasted, in raster pixels, into the other chips that show
    it. It is decoded in a chip that shows the box with :data:`REUSE_MARGIN` px of context on
    every side where the chip cuts into the raster (its neighbours' extra context then lies
    beyond the margin): the first such chip of the batch, else the first of the chips to
    come. A mask of the whole box serves every chip that shows any of it; a box cut by a
    chip's edge (a clipped prompt) serves the chips that show the same part of it. A part
    that no chip of the batch shows with the margin is decoded in each chip, as without
    reuse. Points, whose mask has no bound, and flipped chips (test-time augmentation) are
    decoded in every chip.
    """

    def __init__(self, model: SAM2Base, prompts: Prompts, multimask: bool | None = None,
                 reuse: bool = True, raster_shape: tuple[int, int] | None = None) -> None:
        """Keep the model and the raster's prompts.

        Args:
            model: the SAM 2 model.
            prompts: the raster's prompts; each chip uses those on it.
            multimask: for points, decode three masks and keep the one of highest predicted
                IoU (a single point is ambiguous: roof, building or block); boxes use one
                mask. ``None``: multimask for points only.
            reuse: decode each box once and reuse its mask in other chips (see the class).
            raster_shape: the raster's (rows, columns): a chip edge on the raster's edge
                needs no margin. ``None``: only the top and left edges are known.
        """
        super().__init__(model)
        self.prompts = prompts
        self.multimask = prompts.kind == "point" if multimask is None else multimask
        self.reuse = reuse and prompts.kind == "box"
        self.chunk = prompt_chunk(model, self.device)
        self.raster_shape = raster_shape
        rows, cols = raster_shape or (np.inf, np.inf)
        self._limit = np.array([cols, rows, cols, rows], np.float32)
        self._whole = [tuple(box) for box in
                       np.clip(prompts.xy, 0, self._limit).tolist()] if self.reuse else []
        self._decoded: dict[tuple[int, Part], Kept] = {}

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        """Probabilities of each chip (see :class:`~aerialsam.inference.tiling.ChipModel`)."""
        if not self.reuse or flip != NO_FLIP:
            return self._each_chip(chips, windows, flip)
        out = np.zeros(chips.shape[:3], dtype=np.float32)
        self._forget(min(window.row_off for window in windows))
        shown = [self._shown(window) for window in windows]
        plans = self._plan(shown)
        if any(decode.any() for decode, _ in plans):  # else every mask is known: no encoder
            with torch.inference_mode(), autocast(self.device):
                feats = self.encode(chips)
                for i, ((index, local, parts, _), (decode, keep)) in enumerate(
                        zip(shown, plans, strict=True)):
                    chosen = np.flatnonzero(decode)
                    self._decode(out[i], feats.select(i), windows[i], index[chosen],
                                 local[chosen], [parts[k] for k in chosen], keep[chosen])
        for i, ((index, _, parts, _), (decode, _)) in enumerate(zip(shown, plans, strict=True)):
            self._paste(out[i], windows[i],
                        [(int(index[k]), parts[k]) for k in np.flatnonzero(~decode)])
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
                for start in range(0, len(local), self.chunk):
                    part = local[start:start + self.chunk]
                    probs = self._masks(feats.select(i), part, height, width)
                    out[i] = np.maximum(out[i], probs.max(axis=0))
        return out

    def _shown(self, window: Window) -> Shown:
        """The boxes on a chip and how it shows them.

        Returns:
            Their indices, their chip coordinates, the parts of them the chip shows (raster
            pixels), and whether it shows each with the context a reused mask needs.
        """
        index, local = self.prompts.on_chip(window)
        box = self.prompts.xy[index]
        low = np.array([window.col_off, window.row_off] * 2, np.float32)
        high = np.minimum(low + [window.width, window.height] * 2, self._limit)
        part = np.clip(box, low, high)
        on_edge = np.array([low[0] <= 0, low[1] <= 0, high[0] >= self._limit[0],
                            high[1] >= self._limit[1]])
        room = np.concatenate([part[:, :2] - low[:2], high[2:] - part[:, 2:]], axis=1)
        # a side where the chip cuts the box is shared by every chip showing the same part
        fits = ((part != box) | on_edge | (room >= REUSE_MARGIN)).all(axis=1)
        return index, local, [tuple(p) for p in part.tolist()], fits

    def _plan(self, shown: list[Shown]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per chip of a batch: which boxes it decodes, and which of those masks it keeps.

        The others are pasted: known from earlier batches, or kept by another chip of this
        one (decoded first, whichever of the two comes first in the batch).
        """
        homes: dict[tuple[int, Part], int] = {}
        for i, (index, _, parts, fits) in enumerate(shown):
            for j, part, fit in zip(index.tolist(), parts, fits.tolist(), strict=True):
                if fit:
                    homes.setdefault((j, part), i)
        plans = []
        for i, (index, _, parts, _) in enumerate(shown):
            decode, keep = np.zeros(len(index), bool), np.zeros(len(index), bool)
            for k, (j, part) in enumerate(zip(index.tolist(), parts, strict=True)):
                whole = (j, self._whole[j])
                if whole in self._decoded or (j, part) in self._decoded:
                    continue
                home = homes.get(whole, homes.get((j, part)))
                decode[k], keep[k] = home in (None, i), home == i
            plans.append((decode, keep))
        return plans

    def _decode(self, out: np.ndarray, feats: Features, window: Window, index: np.ndarray,
                local: np.ndarray, parts: list[Part], keep: np.ndarray) -> None:
        """Decode boxes into ``out``; keep the masks ``keep`` says, for other chips."""
        height, width = out.shape
        for start in range(0, len(index), self.chunk):
            end = start + self.chunk
            probs = self._masks(feats, local[start:end], height, width)
            np.maximum(out, probs.max(axis=0), out=out)
            for j, part, prob, kept in zip(index[start:end], parts[start:end], probs,
                                           keep[start:end], strict=True):
                if kept:
                    self._keep((int(j), part), window, prob)

    def _keep(self, key: tuple[int, Part], window: Window, prob: np.ndarray) -> None:
        """A box's mask, cropped to where it is above :data:`REUSE_FLOOR`, in raster pixels."""
        rows, cols = np.nonzero(prob >= REUSE_FLOOR)
        bottom = key[1][3]
        if not len(rows):
            self._decoded[key] = (0, 0, np.zeros((0, 0), np.float32), bottom)
            return
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        self._decoded[key] = (window.row_off + int(r0), window.col_off + int(c0),
                              prob[r0:r1, c0:c1].copy(), bottom)

    def _paste(self, out: np.ndarray, window: Window, keys: list[tuple[int, Part]]) -> None:
        """The kept masks of boxes, where they fall on this chip, into ``out``."""
        for j, part in keys:
            row, col, crop, _ = (self._decoded.get((j, self._whole[j]))
                                 or self._decoded[(j, part)])
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
        """Drop the masks no chip to come needs: box part and mask both end above ``top_row``.

        The chips come row by row, downwards.
        """
        for key in [key for key, (row, _, crop, bottom) in self._decoded.items()
                    if max(row + crop.shape[0], bottom) <= top_row]:
            del self._decoded[key]

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
    return lambda source, src: Sam2Prompted(model, per_source[source.path],
                                             raster_shape=src.shape)


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
    return lambda source, src: Sam2Prompted(model, oracle_prompts(tiles[source.path]),
                                             raster_shape=src.shape)


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
