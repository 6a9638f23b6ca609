"""Per-AOI radiometric stretch: percentile bounds from a seeded sample of tiles, applied to uint8.

SpaceNet imagery is 11-bit data stored as uint16. Models want uint8 RGB, so every chip is
stretched linearly between a low and a high percentile of its band (2 and 98 by default).
The bounds are computed **once per AOI** (per source collection) from a seeded sample of
tiles, never per chip: stretching each chip on its own makes seams and shifts colours between
neighbouring chips. They are saved as ``stretch.json`` beside the chips and reused for any
later imagery of the same AOI.

``stretch.json``::

    {"version": 1,
     "aois": {"AOI_2_Vegas": {"low": [159.0, 282.0, 252.0], "high": [731.0, 834.0, 575.0],
                              "percentiles": [2.0, 98.0], "dtype": "uint16", "bands": [1, 2, 3],
                              "tiles_sampled": 32, "pixels_sampled": 1507328, "seed": 0}}}

Conventions of the uint8 output: valid pixels map to 1..255 and 0 means nodata, so a source
nodata value (and chip padding) stays nodata. uint8 sources pass through unchanged
(``identity``), their own nodata value included.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.windows import Window

from aerialsam.errors import InputError
from aerialsam.inputs import NON_NEGATIVE, check_fields, read_json
from aerialsam.io import open_raster, write_file

log = logging.getLogger(__name__)

STRETCH_FILE = "stretch.json"
STRETCH_VERSION = 1
OUT_NODATA = 0
"""Nodata value of stretched chips; valid pixels are stretched to 1..255."""
SAMPLE_SIDE = 256
"""Each sampled window is read decimated to at most this many pixels per side."""
WINDOW_SIDE = 1024
"""Large rasters are sampled through random windows of this side (in source pixels)."""
WINDOWS_PER_LARGE_TILE = 8
DEFAULT_BANDS: tuple[int, ...] = (1, 2, 3)
RGB_BANDS = 3
"""Bands of every stretch: chips are RGB, a grey raster's band read three times."""
_STRETCH_RANGES = {"tiles_sampled": NON_NEGATIVE, "pixels_sampled": NON_NEGATIVE,
                   "seed": NON_NEGATIVE}


@dataclass(frozen=True)
class Stretch:
    """Linear stretch bounds of one AOI, one (low, high) pair per output band.

    Attributes:
        low: per-band value mapped to 1 (and below it, clipped).
        high: per-band value mapped to 255 (and above it, clipped).
        percentiles: the (low, high) percentiles the bounds come from.
        dtype: the source data type; ``uint8`` means identity (no stretch).
        bands: the 1-based source bands read, in output order (R, G, B).
        tiles_sampled: how many tiles the bounds were computed from.
        pixels_sampled: how many pixels per band were sampled.
        seed: the seed of the tile and window sample.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    percentiles: tuple[float, float] = (2.0, 98.0)
    dtype: str = "uint16"
    bands: tuple[int, ...] = DEFAULT_BANDS
    tiles_sampled: int = 0
    pixels_sampled: int = 0
    seed: int = 0

    @property
    def identity(self) -> bool:
        """True for uint8 sources, which pass through unchanged."""
        return self.dtype == "uint8"

    def to_dict(self) -> dict:
        """A JSON-ready dictionary."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> Stretch:
        """The inverse of :meth:`to_dict`."""
        tuples = {"low", "high", "percentiles", "bands"}
        return cls(**{k: tuple(v) if k in tuples else v for k, v in data.items()})


def identity_stretch(bands: Sequence[int] = DEFAULT_BANDS) -> Stretch:
    """The pass-through stretch of uint8 sources."""
    n = len(bands)
    return Stretch((0.0,) * n, (255.0,) * n, dtype="uint8", bands=tuple(bands))


def source_bands(count: int, path: str | Path) -> tuple[int, ...]:
    """The bands read to make RGB: 1, 2, 3 of a multiband raster, or band 1 three times.

    Raises:
        InputError: a raster with 2 bands (neither grey nor RGB).
    """
    if count >= 3:
        return DEFAULT_BANDS
    if count == 1:
        return (1, 1, 1)
    raise InputError(path, f"has {count} bands; expected 1 (grey) or at least 3 (R, G, B)")


def compute_stretch(paths: Sequence[str | Path], percentiles: tuple[float, float] = (2.0, 98.0),
                    sample_tiles: int = 32, seed: int = 0) -> Stretch:
    """Percentile bounds per band over a seeded sample of tiles of one AOI.

    Pixels are sampled with decimated windowed reads: a small tile is read whole at reduced
    resolution, a large raster through a few random windows, so neither the tile nor the
    collection is ever loaded at full resolution. Nodata pixels are left out. Tiles that
    cannot be read are logged and skipped here; chipping reports them.

    Args:
        paths: the AOI's rasters (all of one data type).
        percentiles: low and high percentile, e.g. ``(2, 98)``.
        sample_tiles: at most this many tiles are sampled.
        seed: seed of the tile and window sample.

    Raises:
        InputError: bad percentiles, no readable tile, or only nodata in the sample.
    """
    lo_pct, hi_pct = percentiles
    if not 0 <= lo_pct < hi_pct <= 100:
        raise InputError("--percentiles", f"need 0 <= low < high <= 100, got {percentiles}")
    if not paths:
        raise InputError("stretch", "no tiles to compute the stretch from")
    rng = np.random.default_rng(seed)
    picked = sorted(rng.choice(len(paths), size=min(sample_tiles, len(paths)), replace=False))
    samples, dtype, bands, used, first_error = [], None, None, 0, None
    for index in picked:
        try:
            with open_raster(paths[index]) as src:
                dtype = dtype or src.dtypes[0]
                bands = bands or source_bands(src.count, src.name)
                if dtype == "uint8":
                    return identity_stretch(bands)
                samples.append(_sample_pixels(src, bands, rng))
                used += 1
        except (InputError, RasterioError) as exc:
            # chipping reports the tile; here it only drops out of the sample
            log.debug("stretch: skipping unreadable tile %s (%s)", paths[index], exc)
            first_error = first_error or exc
    if not samples:
        if isinstance(first_error, InputError):
            raise first_error
        raise InputError(paths[picked[0]], f"cannot read the raster ({first_error})")
    pixels = np.concatenate(samples, axis=1)
    low, high = [], []
    for values in pixels:
        valid = values[~np.isnan(values)]
        if valid.size == 0:
            raise InputError(Path(paths[0]).parent, "sampled pixels are all nodata")
        lo, hi = np.percentile(valid, [lo_pct, hi_pct])
        low.append(float(lo))
        # strictly above low even where 1e-6 is below the float spacing (bounds above 1e10):
        # load_stretches refuses low >= high
        high.append(float(max(hi, lo + 1e-6, np.nextafter(lo, np.inf))))
    return Stretch(tuple(low), tuple(high), (float(lo_pct), float(hi_pct)), str(dtype),
                   tuple(bands), used, int(pixels.shape[1]), seed)


def _sample_pixels(src: rasterio.DatasetReader, bands: tuple[int, ...],
                   rng: np.random.Generator) -> np.ndarray:
    """(bands, n) float64 pixels of one raster, nodata as NaN, from decimated windowed reads."""
    chunks = []
    for window in _sample_windows(src.width, src.height, rng):
        factor = max(1, math.ceil(max(window.width, window.height) / SAMPLE_SIDE))
        shape = (len(bands), math.ceil(window.height / factor), math.ceil(window.width / factor))
        data = src.read(list(bands), window=window, out_shape=shape,
                        resampling=Resampling.nearest).astype(np.float64)
        for i, band in enumerate(bands):
            nodata = src.nodatavals[band - 1]
            if nodata is not None:
                data[i][data[i] == nodata] = np.nan
        chunks.append(data.reshape(len(bands), -1))
    return np.concatenate(chunks, axis=1)


def _sample_windows(width: int, height: int, rng: np.random.Generator) -> list[Window]:
    """The whole raster when small, else a few random windows of :data:`WINDOW_SIDE`."""
    if max(width, height) <= 2 * WINDOW_SIDE:
        return [Window(0, 0, width, height)]
    w, h = min(width, WINDOW_SIDE), min(height, WINDOW_SIDE)
    return [Window(int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1)), w, h)
            for _ in range(WINDOWS_PER_LARGE_TILE)]


def apply_stretch(data: np.ndarray, stretch: Stretch,
                  nodata: Sequence[float | None] | None = None) -> np.ndarray:
    """Stretch a (bands, rows, cols) array to uint8: 1..255 for valid pixels, 0 for nodata.

    Integer sources up to 16 bits go through a lookup table (one ``take`` per band), others
    through float arithmetic. uint8 data is returned unchanged.

    Args:
        data: pixels in the band order of ``stretch.bands``.
        stretch: the AOI's bounds.
        nodata: per-band source nodata value (or ``None``), in the same band order.
    """
    if stretch.identity:
        return data.astype(np.uint8, copy=False)
    nodata = list(nodata) if nodata is not None else [None] * data.shape[0]
    out = np.empty(data.shape, dtype=np.uint8)
    for i, band in enumerate(data):
        if band.dtype.kind in "ui" and band.dtype.itemsize <= 2:
            table = _lookup_table(band.dtype, stretch.low[i], stretch.high[i], nodata[i])
            offset = np.iinfo(band.dtype).min
            out[i] = np.take(table, band if offset == 0 else band.astype(np.int32) - offset)
        else:
            out[i] = _stretch_float(band, stretch.low[i], stretch.high[i], nodata[i])
    return out


def _scale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    scaled = 1.0 + (values.astype(np.float64) - low) * (254.0 / (high - low))
    return np.clip(np.rint(scaled), 1, 255).astype(np.uint8)


@functools.lru_cache(maxsize=64)
def _lookup_table(dtype: np.dtype, low: float, high: float, nodata: float | None) -> np.ndarray:
    info = np.iinfo(dtype)
    table = _scale(np.arange(info.min, info.max + 1), low, high)
    if nodata is not None and info.min <= nodata <= info.max:
        table[int(nodata) - info.min] = OUT_NODATA
    return table


def _stretch_float(band: np.ndarray, low: float, high: float, nodata: float | None) -> np.ndarray:
    out = _scale(np.nan_to_num(band, nan=low), low, high)
    invalid = np.isnan(band) if band.dtype.kind == "f" else np.zeros(band.shape, bool)
    if nodata is not None:
        invalid |= band == nodata
    out[invalid] = OUT_NODATA
    return out


def load_stretches(path: str | Path) -> dict[str, Stretch]:
    """The per-AOI stretches of a ``stretch.json`` (empty when the file does not exist).

    The file is read by :func:`aerialsam.inputs.read_json` (the encoding rule) and every
    entry checked, since a user may hand-edit one or pass another's: each field has the type
    of :class:`Stretch` (no unknown key), the bounds are finite with ``low < high`` for each
    of the :data:`RGB_BANDS` bands, the percentiles lie in ``0 <= low < high <= 100``, the
    band numbers start at 1 and ``dtype`` names a data type. NaN bounds would otherwise make
    every chip garbage without an error.

    Raises:
        InputError: the file is unreadable, not text, not JSON, or not a stretch file this
            version understands (the message names the AOI and the field at fault).
    """
    path = Path(path)
    if not path.exists():
        return {}
    document = read_json(path, what="stretch file (JSON)")
    if not isinstance(document, dict):
        raise InputError(path, "not a valid stretch file (expected a JSON object with "
                               "'version' and 'aois')")
    if document.get("version") != STRETCH_VERSION:
        raise InputError(path, f"not a valid stretch file (version {document.get('version')!r},"
                               f" expected {STRETCH_VERSION})")
    aois = document.get("aois")
    if not isinstance(aois, dict):
        raise InputError(path, "not a valid stretch file ('aois' is not an object of AOIs)")
    return {aoi: _checked_stretch(path, aoi, entry) for aoi, entry in aois.items()}


def _checked_stretch(path: Path, aoi: str, entry: object) -> Stretch:
    """One AOI's entry of a stretch file, checked (see :func:`load_stretches`)."""
    source = f"{path}: {aoi}"
    if not isinstance(entry, dict):
        raise InputError(source, "not a valid stretch entry (expected an object)")
    missing = [key for key in ("low", "high") if key not in entry]
    if missing:
        raise InputError(source, f"not a valid stretch entry (no {' or '.join(missing)})")
    fields = check_fields(Stretch, entry, source, _STRETCH_RANGES)
    stretch = Stretch(**fields)
    for key in ("low", "high", "bands"):
        count = len(getattr(stretch, key))
        if count != RGB_BANDS:
            raise InputError(source, f"{key}: expected {RGB_BANDS} values (R, G, B), found "
                                     f"{count}")
    for band, (low, high) in enumerate(zip(stretch.low, stretch.high, strict=True)):
        if not low < high:
            raise InputError(source, f"band {band + 1}: low bound {low:g} is not below the "
                                     f"high bound {high:g}")
    low_pct, high_pct = stretch.percentiles
    if not 0 <= low_pct < high_pct <= 100:
        raise InputError(source, f"percentiles: need 0 <= low < high <= 100, got "
                                 f"{list(stretch.percentiles)}")
    if min(stretch.bands) < 1:
        raise InputError(source, f"bands: band numbers start at 1, got {list(stretch.bands)}")
    try:
        np.dtype(stretch.dtype)
    except TypeError:
        raise InputError(source, f"dtype: {stretch.dtype!r} is not a data type") from None
    return stretch


def save_stretches(path: str | Path, stretches: dict[str, Stretch]) -> None:
    """Write per-AOI stretches to ``path`` atomically (sorted by AOI).

    Raises:
        OutputError: the file cannot be written (a full disk, say), naming ``path``.
    """
    document = {"version": STRETCH_VERSION,
                "aois": {aoi: stretches[aoi].to_dict() for aoi in sorted(stretches)}}
    write_file(path, (json.dumps(document, indent=1) + "\n").encode())
