"""Small file helpers every stage shares: atomic writes and checked raster opening.

One mechanism makes every output: :func:`atomic_path` yields a temporary name beside the
target and renames it onto the target only once the file is complete and closed, so a crash,
a ``kill -9`` or a full disk never leaves a half-written file at a final name. On top of it,
:func:`write_file` writes bytes and :func:`write_raster` a GeoTIFF. A failed write is an
:class:`OutputError` naming the output (never the hidden temporary), and a full disk says so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import rasterio
from rasterio.errors import RasterioError, RasterioIOError
from tqdm.auto import tqdm

from aerialsam.errors import InputError
from aerialsam.inputs import read_json

T = TypeVar("T")

_TEMPORARY = re.compile(r"^\..*\.(?P<pid>\d+)-[a-z0-9_]{8}\.part(\.[^.]*)?$")
"""The names :func:`atomic_path` gives its temporaries: ``.<stem>.<pid>-<random>.part<suffix>``."""
_FULL = {errno.ENOSPC: "the disk is full (ENOSPC, no space left on device)",
         errno.EDQUOT: "the disk quota is exceeded (EDQUOT)"}


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
"""Read once at import: ``os.umask`` can only be read by setting it, which threads would race."""


class OutputError(InputError):
    """An output that cannot be written: a full disk, no permission, a file in the way.

    The command line prints it as one line like any :class:`InputError`, but a batch stage
    does not count it against the tile at hand: every later write would fail the same way,
    so the run stops, naming the output.
    """

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        """Pickle by ``(source, problem)``, so the error crosses from a worker process."""
        return type(self), (self.source, self.problem)


RESUMES = "finished files are kept and the rest are written"


def output_error(path: str | Path, exc: OSError, resumes: str = RESUMES) -> OutputError:
    """The :class:`OutputError` of an ``OSError`` met while writing ``path``.

    A full disk (or quota) says so and how a rerun resumes (``resumes``): by default, that
    finished outputs are kept, which holds since each was renamed into place only when whole.
    """
    if exc.errno in _FULL:
        return OutputError(path, f"cannot write: {_FULL[exc.errno]}; free some space and "
                                 f"rerun: {resumes}")
    return OutputError(path, f"cannot write ({exc.strerror or exc})")


def check_output_folder(folder: str | Path) -> Path:
    """Refuse an output folder that is a file, or lies inside one, before anything is written.

    Raises:
        OutputError: naming the file in the way.
    """
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        try:
            # One stat: another thread may be making the folders meanwhile.
            mode = candidate.stat().st_mode
        except OSError:  # missing, or under a file: look further up
            continue
        if stat.S_ISDIR(mode):
            return folder
        inside = "" if candidate == folder else f" (cannot make {folder} inside it)"
        raise OutputError(candidate, f"exists and is not a folder{inside}; give a folder "
                                     "for the output")
    return folder


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A half-written output never looks finished: a crash or an exception leaves ``path``
    as it was (absent, or the previous complete version) and removes the temporary file.
    Write the temporary and close it inside the block. The temporary name keeps ``path``'s
    suffix so that drivers chosen by extension still work.

    Raises:
        OutputError: ``path`` is a folder, its folder cannot be made, or writing or renaming
            fails (an ``OSError`` of the temporary, e.g. a full disk), naming ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(path, "is a folder; give a file name for the output")
    tmp = _temporary(path)
    try:
        try:
            yield tmp
        except OSError as exc:
            # An OSError without a file name is the temporary's (a write failing on a full
            # disk); an error naming another file is about an input and passes unchanged.
            if exc.filename is not None and str(exc.filename) != str(tmp):
                raise
            raise output_error(path, exc) from None
        # mkstemp makes the file private; an output is not (where the file system allows).
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o666 & ~_UMASK)
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise output_error(path, exc) from None
    finally:
        tmp.unlink(missing_ok=True)


def _temporary(path: Path) -> Path:
    """Make an empty temporary file beside ``path`` (named for :func:`remove_temporaries`)."""
    check_output_folder(path.parent)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.{os.getpid()}-",
                                    suffix=f".part{path.suffix}", dir=path.parent)
    except OSError as exc:
        raise output_error(path, exc) from None
    os.close(fd)
    return Path(name)


def remove_temporaries(folder: str | Path) -> int:
    """Delete the temporaries that killed writers left under ``folder``; return how many.

    ``kill -9`` or a power cut stops :func:`atomic_path` before it can clean up. Only the
    temporaries of processes no longer running are removed, so a writer busy in the same
    folder keeps its own.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.rglob(".*.part*"):
        match = _TEMPORARY.match(path.name)
        if match and path.is_file() and not _running(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def is_temporary(path: str | Path) -> bool:
    """Whether ``path`` is named like a temporary of :func:`atomic_path` (no output)."""
    return _TEMPORARY.match(Path(path).name) is not None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def write_file(path: str | Path, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Raises:
        OutputError: the file cannot be written (a full disk, say), naming ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("wb") as out:
        out.write(data)
    return path


def write_raster(path: str | Path, data: np.ndarray, **profile: object) -> Path:
    """Write a raster atomically: GDAL encodes it in memory, :func:`write_file` stores it.

    GDAL reports a failed disk write (a full disk) only as a logged error, often when the
    file is closed and sometimes not at all, and prints libtiff's complaints straight to
    stderr, so a raster GDAL wrote to disk cannot be trusted to be whole. Encoded in memory,
    every byte reaches the disk through Python, whose errors are exceptions.

    Args:
        path: the output file.
        data: ``(rows, cols)`` for one band, or ``(bands, rows, cols)``.
        **profile: rasterio creation options (``driver``, ``dtype``, ``crs``, ``transform``,
            ``compress`` …); ``count``, ``height`` and ``width`` default to ``data``'s shape.

    Raises:
        OutputError: the file cannot be written, naming ``path``.
    """
    bands = data[np.newaxis] if data.ndim == 2 else data
    shape = {"count": bands.shape[0], "height": bands.shape[1], "width": bands.shape[2]}
    with rasterio.MemoryFile() as memory:
        with memory.open(**{"driver": "GTiff", **shape, **profile}) as dst:
            dst.write(bands)
        return write_file(path, memory.getbuffer())


def raster_complete(path: str | Path) -> bool:
    """Whether ``path`` is a whole raster, cheaply: it opens, and every block is in the file.

    A stage skips outputs that are already there; this is what "there" means. It catches
    what an interrupted or failed non-atomic write leaves (an empty file, a cut one) without
    decoding pixels. Outputs written by :func:`atomic_path` are always whole; the check is
    for files written some other way.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with _gdal_quiet(), rasterio.open(path) as src:
            if src.driver != "GTiff":
                return True
            return _blocks_end(src) <= size
    except (OSError, RasterioError, ValueError):
        return False


@contextlib.contextmanager
def _gdal_quiet() -> Iterator[None]:
    """Hide GDAL's warnings (logged through rasterio) while a file that may be damaged is probed.

    The probe's answer says all there is to say; GDAL would add a line per unreadable tag.
    """
    logger = logging.getLogger("rasterio")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _blocks_end(src: rasterio.DatasetReader) -> int:
    """The last byte of the TIFF's blocks, from the offsets and sizes its directory records."""
    interleaving = src.interleaving.name.lower() if src.interleaving else "pixel"
    bands = src.indexes if interleaving == "band" else (1,)
    end = 0
    for band in bands:
        for (row, col), _ in src.block_windows(band):
            offset = src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=band)
            length = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=band)
            end = max(end, int(offset or 0) + int(length or 0))
    return end


def open_raster(path: str | Path, require_crs: bool = True) -> rasterio.DatasetReader:
    """Open a raster for reading, turning every failure into an :class:`InputError`.

    Args:
        path: the raster file.
        require_crs: refuse a raster without a coordinate reference system.

    Raises:
        InputError: the file is missing, not a readable raster, or has no CRS.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    try:
        src = rasterio.open(path)
    except RasterioIOError as exc:
        raise InputError(path, f"not a readable raster ({_first_line(exc)})") from None
    if require_crs and src.crs is None:
        src.close()
        raise InputError(path, "raster has no CRS (georeferencing is required)")
    return src


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def record_params(folder: str | Path, filename: str, params: dict, what: str) -> None:
    """Record the parameters a stage folder is made with; refuse a folder made with others.

    Reruns of a stage skip finished outputs, so mixing the outputs of two parameter sets in
    one folder would go unnoticed: the first run writes ``folder/filename``, later runs must
    match it.

    Raises:
        InputError: the folder holds ``what`` made with other parameters, or an unreadable
            parameter file.
        OutputError: the parameter file cannot be written.
    """
    folder = Path(folder)
    path = folder / filename
    if path.exists():
        try:
            found = read_json(path)
        except InputError as exc:
            # a binary, non-UTF-8 or cut-short file (a killed writer's, or one edited by hand)
            raise InputError(path, f"unreadable parameter file ({exc.problem}); delete the "
                                   "folder or this file") from None
        if found != params:
            raise InputError(folder, f"holds {what} made with {found}, not {params}; "
                                     "choose another folder or delete this one")
        return
    write_file(path, (json.dumps(params, indent=1) + "\n").encode())


def progress_bar(iterable: Iterable[T] | None = None,
                 **options: Any) -> tqdm:  # noqa: ANN401 (tqdm's options)
    """A tqdm progress bar (``options`` as tqdm's) that ``TQDM_DISABLE`` silences.

    tqdm reads ``TQDM_DISABLE`` only as the default of ``disable``, and its notebook bar shows
    itself for ``disable=None``: the book's batch execution (which sets it, see
    :mod:`aerialsam.book.notebooks`) would print the first line of every bar into the pages.
    Otherwise tqdm decides: shown on a terminal or in a live notebook, hidden in a log.
    """
    disable = True if os.environ.get("TQDM_DISABLE") else None
    return tqdm(iterable, disable=disable, **options)
