"""Safe tarball extraction and placement of an extracted AOI into its dataset's layout.

Every member is checked before it is written: an absolute path, a ``..`` component, a link
whose target lands outside the destination, or a device file is refused with an
:class:`UnsafeArchiveError` naming the member. Extraction goes to a staging folder that the
caller deletes on failure, so a refused archive leaves nothing in the data folder. Where the
standard library offers it (Python >= 3.11.4, 3.10.12), ``tarfile``'s ``data`` filter runs
as a second guard; what it refuses is an :class:`UnsafeArchiveError` too. A member that cannot
be written (a full disk) is an :class:`~aerialsam.io.OutputError` naming it.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from aerialsam.errors import AerialSamError
from aerialsam.io import output_error

log = logging.getLogger(__name__)

_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
_FILTER_ERROR: type[Exception] = getattr(tarfile, "FilterError", tarfile.TarError)


class UnsafeArchiveError(AerialSamError):
    """An archive member would land outside the destination, or is a special file."""


def member_problem(member: tarfile.TarInfo, dest: Path) -> str | None:
    """Why extracting ``member`` into ``dest`` would be unsafe, or ``None`` when it is safe.

    Args:
        member: a tar member.
        dest: the extraction folder, already resolved to an absolute path.
    """
    name = PurePosixPath(member.name)
    if name.is_absolute() or member.name.startswith(("/", "\\")) or ":" in name.parts[0]:
        return "absolute path"
    if ".." in name.parts:
        return "'..' in the path"
    target = (dest / name).resolve()
    if not _inside(target, dest):
        return "path outside the destination"
    if member.issym():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or not _inside((target.parent / link).resolve(), dest):
            return f"symbolic link pointing outside the destination ({member.linkname})"
    if member.islnk():
        link = PurePosixPath(member.linkname)
        if link.is_absolute() or not _inside((dest / link).resolve(), dest):
            return f"hard link pointing outside the destination ({member.linkname})"
    if member.isdev() or member.isfifo():
        return "device or FIFO"
    return None


def safe_extract(archive: str | Path, dest: str | Path, progress: bool = True) -> int:
    """Extract a (compressed) tarball into ``dest``, checking each member first.

    The archive is read as a stream, so a 20 GB tarball is decompressed once.

    Args:
        archive: a .tar, .tar.gz, .tar.bz2 or .tar.xz file.
        dest: the folder to extract into (created).
        progress: show a tqdm bar of extracted members (on a terminal).

    Returns:
        The number of members extracted.

    Raises:
        UnsafeArchiveError: a member is unsafe; members before it are already extracted,
            so extract into a staging folder and delete it on failure.
        AerialSamError: the archive is not a readable tarball.
        OutputError: a member cannot be written (a full disk, say).
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    count = 0
    try:
        with tarfile.open(archive, "r|*") as tar, \
                tqdm(desc=f"extract {archive.name}", unit="file",
                     disable=None if progress else True) as bar:
            for member in tar:
                _extract_member(tar, member, root, archive)
                count += 1
                bar.update(1)
    except (tarfile.ReadError, EOFError) as exc:
        raise AerialSamError(f"{archive}: not a readable tarball ({exc})") from None
    return count


def _extract_member(tar: tarfile.TarFile, member: tarfile.TarInfo, root: Path,
                    archive: Path) -> None:
    """Extract one member after checking it; refusals and write failures name the member."""
    problem = member_problem(member, root)
    if problem:
        raise UnsafeArchiveError(f"{archive}: refusing member {member.name!r}: {problem}")
    try:
        tar.extract(member, root, **_FILTER)
    except _FILTER_ERROR as exc:
        raise UnsafeArchiveError(f"{archive}: refusing member {member.name!r}: {exc}") from None
    except OSError as exc:
        # A write error carries an errno and names the member's file, or nothing.
        named = exc.filename is not None and not _inside(Path(exc.filename).resolve(), root)
        if exc.errno is None or named:
            raise
        raise output_error(root / member.name, exc) from None


def find_aoi_folder(staging: Path, folder: str, holds: str, aoi: str | None = None) -> Path:
    """The extracted AOI folder in ``staging`` (searched at depth 0 to 2).

    Preferred is a folder named ``folder``, the AOI folder of the dataset's layout
    (``AOI_2_Vegas_Train``, ``SN3_roads_train_AOI_2_Vegas``); else one whose name has ``aoi``
    as a whole part (``AOI_2_Vegas``, ``AOI_2_Vegas_Test``, ``SN3_roads_train_AOI_2_Vegas``)
    and that holds ``holds/``, the layout folder the tarball fills (``RGB-PanSharpen``,
    ``PS-RGB``, ``geojson_roads_speed``); else ``staging`` itself when ``holds/`` is at its top.

    Raises:
        AerialSamError: none was found (the message lists what the archive holds).
    """
    levels = (staging, *staging.glob("*"), *staging.glob("*/*"))
    dirs = [p for p in levels if p.is_dir()]
    for candidate in dirs:
        if candidate.name == folder:
            return candidate
    named = re.compile(rf"(^|_){re.escape(aoi)}(_|$)") if aoi else None
    for candidate in dirs:
        if named and named.search(candidate.name) and (candidate / holds).is_dir():
            return candidate
    if (staging / holds).is_dir():
        return staging
    found = sorted(p.name for p in staging.iterdir())[:10]
    raise AerialSamError(f"{staging}: the archive holds no {folder}/ folder and no "
                         f"{aoi or 'AOI'} folder with {holds}/ in it (found {found})")


def merge_into(source: Path, target: Path) -> int:
    """Move every file of ``source`` to the same relative path under ``target``.

    Files already in ``target`` (e.g. from an earlier per-tile download) are replaced; each
    move is a rename on the same file system, so no file is ever half-written.

    Returns:
        The number of files moved.
    """
    moved = 0
    for folder, _, files in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        for name in files:
            os.replace(Path(folder) / name, target / relative / name)
            moved += 1
    shutil.rmtree(source, ignore_errors=True)
    log.info("placed %d files in %s", moved, target)
    return moved


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
