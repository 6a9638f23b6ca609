"""Tiled inference over any raster: overlapping chips, weighted blending, streaming windows.

A model sees square chips of ``size`` pixels on the chips module's grid
(:func:`aerialsam.prep.chips.chip_offsets`: steps of ``size - overlap``, the last chip shifted
inward). Each chip's probabilities are weighted by a window that ramps up over the overlap
from the chip's edges, summed and divided by the summed weights: where chips overlap the
result moves smoothly from one chip to the next (no seams), and where one chip covers a
pixel alone the result is exactly that chip's output.

The raster is read one strip of chips at a time and the blended probabilities are written as
soon as no later strip can touch them, so memory stays proportional to ``size x width``,
never to the raster: a 20,000 x 20,000 orthomosaic never sits whole in memory.
"""

from __future__ import annotations

import contextlib
import errno
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import numpy as np
import rasterio
from rasterio.errors import RasterioError
from rasterio.windows import Window

from aerialsam.errors import InputError
from aerialsam.io import atomic_path, open_raster, output_error, progress_bar, raster_complete
from aerialsam.prep.chips import GDAL_CACHE_MB, check_grid, chip_offsets
from aerialsam.prep.stretch import (
    Stretch,
    apply_stretch,
    compute_stretch,
    identity_stretch,
    source_bands,
)

log = logging.getLogger(__name__)

Flip = tuple[bool, bool]
"""(horizontal, vertical): mirror columns, mirror rows."""
NO_FLIP: Flip = (False, False)
TTA_FLIPS: tuple[Flip, ...] = ((False, False), (True, False), (False, True), (True, True))
WRITE_ROWS = 16
"""Rows per block of the probability GeoTIFF; strips are written in whole blocks."""
MIN_WEIGHT = 1e-3
"""Blending weight at a chip's very edge: small, but a raster's border pixels still count."""
CHECK_BYTES = 8 * 2**20
"""Budget of one read of :func:`check_image`, which stops at the first strip with data."""


class ChipModel(Protocol):
    """What tiled inference runs: stretched uint8 chips in, probabilities out."""

    def __call__(self, chips: np.ndarray, windows: Sequence[Window],
                 flip: Flip = NO_FLIP) -> np.ndarray:
        """Building probabilities for a batch of chips.

        Args:
            chips: (B, size, size, 3) uint8, already flipped as ``flip`` says.
            windows: each chip's window in raster pixels (before flipping), for models
                with prompts in raster coordinates.
            flip: how the chips were mirrored; prompted models mirror their prompts alike.

        Returns:
            (B, size, size) float32 probabilities, or (B, C, size, size) for models with
            several outputs (channel 0 the building footprint, 1 the contact between
            buildings), in the flipped frame.
        """
        ...


def check_image(path: str | Path, require_crs: bool = True) -> None:
    """Refuse a raster that no model can predict; every prediction path calls this first.

    The raster must open, have pixels, have 1 band (grey) or at least 3 (R, G, B), and hold
    a valid value in each band read: nodata values, NaN and infinities are not data.
    Strips are read from the top until every band has shown a valid value, so an ordinary
    image costs one small read; only one that is (almost) all nodata is read whole.

    Args:
        path: the raster.
        require_crs: refuse a raster without a coordinate reference system.

    Raises:
        InputError: naming the file and what is wrong with it.
    """
    path = Path(path)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(path, require_crs) as src:
        if src.width < 1 or src.height < 1:
            raise InputError(path, f"has no pixels ({src.width} x {src.height})")
        empty = sorted(set(source_bands(src.count, path)))
        row_bytes = src.width * len(empty) * np.dtype(src.dtypes[0]).itemsize
        rows = max(1, CHECK_BYTES // row_bytes)
        try:
            for top in range(0, src.height, rows):
                window = Window(0, top, src.width, min(rows, src.height - top))
                data = src.read(empty, window=window)
                empty = [band for band, values in zip(empty, data, strict=True)
                         if not _has_data(values, src.nodatavals[band - 1])]
                if not empty:
                    return
        except RasterioError as exc:
            raise unreadable(path, exc) from None
    which = (f"band {empty[0]} holds" if len(empty) == 1
             else f"bands {', '.join(map(str, empty))} hold")
    raise InputError(path, f"{which} only nodata (the nodata value, NaN or infinity): "
                           "nothing to predict")


def unreadable(path: Path, exc: RasterioError) -> InputError:
    """The one-line error of a raster whose pixels GDAL fails to read."""
    detail = str(exc.__cause__ or exc).strip().splitlines()
    return InputError(path, "cannot read the raster, truncated or corrupt "
                            f"({detail[0] if detail else type(exc).__name__})")


def _has_data(values: np.ndarray, nodata: float | None) -> bool:
    """Whether a band's pixels hold at least one valid value."""
    valid = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
    if nodata is not None and not np.isnan(nodata):
        valid &= values != nodata
    return bool(valid.any())


def blend_weights(size: int, overlap: int) -> np.ndarray:
    """(size, size) float32 weights: 1 in the chip's core, ramping down over the overlap."""
    check_grid(size, overlap)
    ramp = np.ones(size, dtype=np.float32)
    if overlap:
        edge = np.clip((np.arange(overlap, dtype=np.float32) + 0.5) / overlap, MIN_WEIGHT, 1.0)
        ramp[:overlap] = edge
        ramp[size - overlap:] = np.minimum(ramp[size - overlap:], edge[::-1])
    return np.outer(ramp, ramp)


def raster_stretch(src: rasterio.DatasetReader, path: Path,
                   stretch: Stretch | None = None) -> Stretch:
    """The stretch to read ``src`` as RGB uint8 with, checking its bands.

    uint8 rasters pass through; other types use ``stretch`` (the AOI's saved bounds) or,
    without one, 2-98 percentile bounds sampled from this raster, never a per-chip min-max.

    Raises:
        InputError: 2 bands, or a saved stretch for another band layout.
    """
    bands = source_bands(src.count, path)
    if src.count > 3:
        log.info("%s has %d bands: using bands 1, 2, 3 as R, G, B", path.name, src.count)
    if src.dtypes[0] == "uint8":
        return identity_stretch(bands)
    if stretch is None:
        log.warning("%s is %s with no saved stretch: using 2-98 percentile bounds of this "
                    "image (pass the AOI's stretch.json to match the training chips)",
                    path.name, src.dtypes[0])
        return compute_stretch([path])
    if len(stretch.bands) != 3 or max(stretch.bands) > src.count:
        raise InputError(path, f"the stretch reads bands {list(stretch.bands)} but the image "
                               f"has {src.count}")
    return stretch


def read_strip(src: rasterio.DatasetReader, stretch: Stretch, row: int, size: int) -> np.ndarray:
    """Rows ``row .. row + size`` of the raster as (size, width, 3) uint8, zero-padded below."""
    rows = min(size, src.height - row)
    data = src.read(list(stretch.bands), window=Window(0, row, src.width, rows))
    nodata = [src.nodatavals[b - 1] for b in stretch.bands]
    rgb = np.zeros((size, src.width, 3), dtype=np.uint8)
    rgb[:rows] = apply_stretch(data, stretch, nodata).transpose(1, 2, 0)
    return rgb


def strip_chips(strip: np.ndarray, cols: Sequence[int], size: int) -> np.ndarray:
    """The (n, size, size, 3) chips of one strip at column offsets ``cols``, zero-padded."""
    chips = np.zeros((len(cols), size, size, 3), dtype=np.uint8)
    for i, col in enumerate(cols):
        piece = strip[:, col:col + size]
        chips[i, :, :piece.shape[1]] = piece
    return chips


def run_model(model: ChipModel, chips: np.ndarray, windows: Sequence[Window],
              batch_size: int, tta: bool = False) -> np.ndarray:
    """(B, C, size, size) probabilities for chips in batches.

    They are averaged over the four flips when ``tta``.
    """
    parts = [_predict_batch(model, chips[start:start + batch_size],
                            windows[start:start + batch_size], tta)
             for start in range(0, len(chips), batch_size)]
    return np.concatenate(parts)


def _predict_batch(model: ChipModel, chips: np.ndarray, windows: Sequence[Window],
                   tta: bool) -> np.ndarray:
    if not tta:
        return _channels(model(chips, windows, NO_FLIP))
    total = sum(_unflip(_channels(model(_flip_chips(chips, flip), windows, flip)), flip)
                for flip in TTA_FLIPS)
    return total / len(TTA_FLIPS)


def _channels(probs: np.ndarray) -> np.ndarray:
    """Model output as (B, C, rows, cols) float32."""
    probs = np.asarray(probs, dtype=np.float32)
    return probs[:, None] if probs.ndim == 3 else probs


def _flip_chips(chips: np.ndarray, flip: Flip) -> np.ndarray:
    if flip[0]:
        chips = chips[:, :, ::-1]
    if flip[1]:
        chips = chips[:, ::-1]
    return np.ascontiguousarray(chips)


def _unflip(probs: np.ndarray, flip: Flip) -> np.ndarray:
    if flip[0]:
        probs = probs[..., ::-1]
    if flip[1]:
        probs = probs[..., ::-1, :]
    return probs


class _Blender:
    """Weighted sums of the rows not yet written, from row ``base`` on."""

    def __init__(self, width: int, size: int, weights: np.ndarray, channels: int) -> None:
        self.total = np.zeros((channels, size + WRITE_ROWS, width), dtype=np.float32)
        self.weight = np.zeros((size + WRITE_ROWS, width), dtype=np.float32)
        self.weights = weights
        self.base = 0

    def add(self, probs: np.ndarray, row: int, cols: Sequence[int], height: int) -> None:
        """Add one strip's (n, C, size, size) chip probabilities (clipped to the raster)."""
        top = row - self.base
        rows = min(probs.shape[-2], height - row)
        for prob, col in zip(probs, cols, strict=True):
            cols_in = min(prob.shape[-1], self.weight.shape[1] - col)
            w = self.weights[:rows, :cols_in]
            self.total[:, top:top + rows, col:col + cols_in] += prob[:, :rows, :cols_in] * w
            self.weight[top:top + rows, col:col + cols_in] += w

    def pop(self, upto: int) -> np.ndarray:
        """Blended rows ``base .. upto`` (C, n, width); the buffer moves on to ``upto``."""
        n = upto - self.base
        out = self.total[:, :n] / np.maximum(self.weight[:n], MIN_WEIGHT ** 2)
        self.total[:, :-n] = self.total[:, n:].copy()
        self.total[:, -n:] = 0
        self.weight[:-n] = self.weight[n:].copy()
        self.weight[-n:] = 0
        self.base = upto
        return out


def _strips(height: int, size: int, overlap: int) -> Iterator[tuple[int, int]]:
    """(strip start row, first row a later strip may still touch) for each strip."""
    rows = chip_offsets(height, size, overlap)
    for i, row in enumerate(rows):
        yield row, rows[i + 1] if i + 1 < len(rows) else height


def predict_raster(path: str | Path, model: ChipModel, out_path: str | Path, size: int = 512,
                   overlap: int = 64, batch_size: int = 4, stretch: Stretch | None = None,
                   tta: bool = False) -> Path:
    """Blend a model's chip probabilities over a whole raster into a probability GeoTIFF.

    Args:
        path: any GeoTIFF (1 band grey, or 3+ bands read as R, G, B; uint8 or wider).
        model: a :class:`ChipModel`.
        out_path: the float32 probability GeoTIFF to write, on the raster's grid (written
            atomically; pixels the source marks nodata get probability 0); one band per
            model output (band 1 footprint, band 2 contact when the model has it).
        size: chip side in pixels.
        overlap: pixels shared by neighbouring chips.
        batch_size: chips per model call.
        stretch: the AOI's stretch for non-uint8 rasters (see :func:`raster_stretch`).
        tta: average the four flips of every chip (4x the model calls).

    Raises:
        InputError: an unreadable raster, a bad band count or a bad grid.
    """
    check_grid(size, overlap)
    path, out_path = Path(path), Path(out_path)
    weights = blend_weights(size, overlap)
    # GDAL's default block cache (5 % of RAM) would fill with the source's decoded tiles
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(path, require_crs=False) as src, \
            atomic_path(out_path) as tmp, contextlib.ExitStack() as stack:
        stretch = raster_stretch(src, path, stretch)
        cols = chip_offsets(src.width, size, overlap)
        blender = dst = None
        strips = list(_strips(src.height, size, overlap))
        ahead = stack.enter_context(_ReadAhead(path, stretch, [row for row, _ in strips], size))
        for row, next_row in progress_bar(strips, desc=path.name, unit="strip"):
            chips = strip_chips(ahead.next(), cols, size)
            windows = [Window(col, row, size, size) for col in cols]
            probs = run_model(model, chips, windows, batch_size, tta)
            if blender is None:  # the first strip tells how many outputs the model has
                blender = _Blender(src.width, size, weights, probs.shape[1])
                dst = stack.enter_context(rasterio.open(tmp, "w", **_prob_profile(
                    src, probs.shape[1])))
            blender.add(probs, row, cols, src.height)
            upto = src.height if next_row == src.height else next_row // WRITE_ROWS * WRITE_ROWS
            if upto > blender.base:
                _write_rows(src, dst, blender.base, blender.pop(upto))
        stack.close()
        # GDAL streams this raster (too large to encode in memory) and reports a failed
        # write only in its log: a file cut short by a full disk must not become final
        if not raster_complete(tmp):
            raise output_error(out_path, OSError(errno.ENOSPC, "no space left on device"))
    return out_path


class _ReadAhead:
    """The strips of a raster, each read in a thread while the model works on the one before.

    The thread reads through its own handle of the raster (a GDAL dataset must not be used by
    two threads at once); GDAL and the model both release the GIL, so on a GPU reading and
    stretching the next strip hides behind the model.
    """

    def __init__(self, path: Path, stretch: Stretch, rows: Sequence[int], size: int) -> None:
        """Start reading the first strip.

        Args:
            path: the raster.
            stretch: how to read it as RGB uint8.
            rows: the first row of each strip, in order.
            size: rows per strip (the chip side).
        """
        self.path, self.stretch, self.rows, self.size = path, stretch, list(rows), size
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-ahead")
        self.src: rasterio.DatasetReader | None = None
        self.future: Future[np.ndarray] | None = None
        self._submit()

    def _submit(self) -> None:
        """Start reading the next strip, if one is left."""
        if self.rows:
            self.future = self.pool.submit(self._read, self.rows.pop(0))

    def _read(self, row: int) -> np.ndarray:
        """One strip, read in the thread (a read error becomes one line naming the raster)."""
        # rasterio's environment is per thread: this one's GDAL messages go through
        # rasterio's error handler, as the main thread's do, not to stderr
        with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
            if self.src is None:
                self.src = open_raster(self.path, require_crs=False)
            try:
                return read_strip(self.src, self.stretch, row, self.size)
            except RasterioError as exc:
                raise unreadable(self.path, exc) from None

    def next(self) -> np.ndarray:
        """The next strip (errors of its read raised here); the one after starts reading."""
        if self.future is None:
            raise IndexError("every strip was read")
        strip = self.future.result()
        self.future = None
        self._submit()
        return strip

    def __enter__(self) -> _ReadAhead:
        """Use as a context: the thread and its handle end with it."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Wait for a read in progress, then close the handle."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.src is not None:
            self.src.close()


def _prob_profile(src: rasterio.DatasetReader, channels: int) -> dict:
    return {"driver": "GTiff", "width": src.width, "height": src.height, "count": channels,
            "dtype": "float32", "crs": src.crs, "transform": src.transform,
            "blockysize": WRITE_ROWS, "compress": "deflate", "predictor": 3, "nodata": None}


def _write_rows(src: rasterio.DatasetReader, dst: rasterio.io.DatasetWriter, row: int,
                prob: np.ndarray) -> None:
    window = Window(0, row, src.width, prob.shape[1])
    if src.nodata is not None:
        prob = np.where(src.read_masks(1, window=window) > 0, prob, 0.0).astype(np.float32)
    dst.write(prob, window=window)
