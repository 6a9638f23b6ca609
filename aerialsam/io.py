"""Small file helpers every stage shares: atomic writes and checked raster opening."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import rasterio
from rasterio.errors import RasterioIOError

from aerialsam.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A half-written output never looks finished: a crash or an exception leaves ``path``
    as it was (absent, or the previous complete version) and removes the temporary file.
    The temporary name keeps ``path``'s suffix so that drivers chosen by extension still work.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder; give a file name for the output")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".part{path.suffix}",
                                        dir=path.parent)
    except OSError as exc:
        raise InputError(path, f"cannot write here ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        try:
            os.replace(tmp, path)
        except OSError as exc:
            # Name the output the user asked for, not the hidden temporary file.
            raise InputError(path, f"cannot write ({exc.strerror or exc})") from None
    finally:
        tmp.unlink(missing_ok=True)


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
        InputError: the folder holds ``what`` made with other parameters.
    """
    folder = Path(folder)
    path = folder / filename
    if path.exists():
        found = json.loads(path.read_text())
        if found != params:
            raise InputError(folder, f"holds {what} made with {found}, not {params}; "
                                     "choose another folder or delete this one")
        return
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(params, indent=1) + "\n")
