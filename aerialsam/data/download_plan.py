"""Where a download puts files, what it would fetch, dry-run reports, the free-space check.

The :data:`LAYOUTS` are the on-disk layouts a dataset of the manifest names (``spacenet2`` for
buildings, ``spacenet3`` for roads): AOI folder names and tile paths. :mod:`aerialsam.data.download`
builds a :class:`Plan` per AOI (its tarballs from the manifest alone, or tiles from one bucket
listing); ``aerialsam download --dry-run`` prints them with :func:`describe_plans` and a real
run checks :func:`check_free_space` first.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from aerialsam.data import spacenet, spacenet3
from aerialsam.errors import InputError

SPACE_MARGIN = 1.05


class NotEnoughSpaceError(InputError):
    """The destination's file system lacks room for the download."""


@dataclass(frozen=True)
class Layout:
    """Where a dataset's files go on disk: the SpaceNet 2 or SpaceNet 3 layout of DESIGN.md.

    Attributes:
        name: the manifest's ``layout`` value.
        tile_side: tile side in pixels.
        image_dir: the folder of an AOI that holds its images.
        folder: ``(aoi, split) -> AOI folder name``.
        image: ``(AOI folder, aoi, n) -> image path`` of tile ``n``.
        label: ``(AOI folder, aoi, n) -> label path`` of tile ``n``.
    """

    name: str
    tile_side: int
    image_dir: str
    folder: Callable[[str, str], str]
    image: Callable[[Path, str, int], Path]
    label: Callable[[Path, str, int], Path]


def _sn2_folder(aoi: str, split: str) -> str:
    return f"{aoi}_Train" if split == "train" else f"{aoi}_Test_public"


def _sn2_image(folder: Path, aoi: str, number: int) -> Path:
    return folder / spacenet.IMAGE_DIR / f"{spacenet.IMAGE_DIR}_{aoi}_img{number}.tif"


def _sn2_label(folder: Path, aoi: str, number: int) -> Path:
    return folder / spacenet.GEOJSON_DIR / f"buildings_{aoi}_img{number}.geojson"


def _sn3_image(folder: Path, aoi: str, number: int) -> Path:
    return spacenet3.image_path(folder, number)


def _sn3_label(folder: Path, aoi: str, number: int) -> Path:
    return spacenet3.geojson_path(folder, number)


LAYOUTS: dict[str, Layout] = {
    "spacenet2": Layout("spacenet2", 650, spacenet.IMAGE_DIR, _sn2_folder, _sn2_image,
                        _sn2_label),
    "spacenet3": Layout("spacenet3", spacenet3.TILE_SIDE, spacenet3.IMAGE_DIR,
                        spacenet3.aoi_dir_name, _sn3_image, _sn3_label),
}
"""The layouts a manifest may name, by ``layout`` value."""


@dataclass(frozen=True)
class PlannedObject:
    """One object a download would fetch and where it would go."""

    key: str
    path: Path
    size: int | None
    size_exact: bool = True
    md5: str | None = None

    def describe(self) -> str:
        """One line: size (``~`` when approximate), key, and md5 when known."""
        bytes_text = ""
        if self.size is not None:
            bytes_text = f" ({self.size} bytes)" if self.size_exact else " (approximate)"
        md5_text = f"  md5 {self.md5}" if self.md5 else ""
        return f"  {_size_text(self.size, self.size_exact)}{bytes_text}  {self.key}{md5_text}"


@dataclass
class Plan:
    """What one AOI's download would fetch (``objects``) and what is already there."""

    aoi: str
    split: str
    mode: str
    folder: Path
    objects: list[PlannedObject] = field(default_factory=list)
    present: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        """Bytes still to fetch (unknown sizes count as 0)."""
        return sum(o.size or 0 for o in self.objects)

    @property
    def exact(self) -> bool:
        """Whether every size in the plan is exact."""
        return all(o.size is not None and o.size_exact for o in self.objects)

    def describe(self) -> list[str]:
        """Human-readable lines: one per object, then a total."""
        lines = [f"{self.aoi} {self.split} ({self.mode}) -> {self.folder}"]
        lines += [o.describe() for o in self.objects]
        if self.present:
            lines.append(f"  {self.present} file(s) already present, skipped")
        lines += [f"  {note}" for note in self.notes]
        lines.append(f"  total {_total_text(self.objects)} in {len(self.objects)} object(s)")
        return lines


def describe_plans(plans: list[Plan], dest: str | Path) -> list[str]:
    """The dry-run report: every plan, the grand total, and the free space at ``dest``."""
    lines = [line for plan in plans for line in plan.describe()]
    total = _total_text([o for plan in plans for o in plan.objects])
    probe = _existing_parent(Path(dest))
    lines.append(f"total to fetch: {total}; "
                 f"free at {probe}: {_size_text(shutil.disk_usage(probe).free)}")
    return lines


def check_free_space(dest: Path, needed: int) -> None:
    """Refuse when the file system holding ``dest`` has less than ``needed`` bytes (+5 %) free.

    Raises:
        NotEnoughSpaceError: naming the destination, the bytes needed and the bytes free.
    """
    free = shutil.disk_usage(_existing_parent(dest)).free
    if needed * SPACE_MARGIN > free:
        raise NotEnoughSpaceError(dest, f"needs about {_size_text(int(needed * SPACE_MARGIN))} "
                                        f"free, has {_size_text(free)}; free some space or "
                                        "choose another --dest")


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _total_text(objects: list[PlannedObject]) -> str:
    known = [o for o in objects if o.size is not None]
    unknown = len(objects) - len(known)
    if known or not unknown:
        text = _size_text(sum(o.size for o in known), all(o.size_exact for o in known))
        return f"{text} + {unknown} object(s) of unknown size" if unknown else text
    return "size unknown"


def _size_text(size: int | None, exact: bool = True) -> str:
    if size is None:
        return "size unknown"
    prefix = "" if exact else "~"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{prefix}{size / scale:.1f} {unit}"
    return f"{prefix}{size} B"
