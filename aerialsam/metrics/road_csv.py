"""Reading SpaceNet 3 road CSVs (``ImageId,WKT_Pix``) as the official scorer's tester does.

Each image's roads are its rows, in file order, wherever they are in the file; blank lines,
lines starting with ``#`` and repeated headers are skipped; a WKT left unquoted (its commas
splitting the row) is read to the end of the line, as the tester does. The scorer refuses,
and so does :func:`read_roads_csv`, with one line naming the file, the line, the image and
the problem: ``LINESTRING EMPTY`` beside other rows of the same image, a lone point, a
section under 0.01 px, a section repeated (either direction, ends compared in 0.1 px
cells); also anything but a LineString, unparsable WKT and coordinates that are not finite
or beyond 1e9 px (:data:`aerialsam.inputs.COORDINATE_LIMIT`: they overflow the scorer's
arithmetic). A
LineString with Z (or M) values keeps x and y.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path

import numpy as np

from aerialsam.data.spacenet import parse_image_id
from aerialsam.errors import InputError
from aerialsam.inputs import COORDINATE_LIMIT, open_text
from aerialsam.metrics.road_graph import road_problem

log = logging.getLogger(__name__)

__all__ = ["read_roads_csv"]

_LINESTRING = re.compile(r"^LINESTRING\s*(?:ZM|Z|M)?\s*(?:(EMPTY)|\((.*)\))$", re.S)


def _parse_linestring(text: str) -> np.ndarray:
    """Vertices of a WKT LineString (``(0, 2)`` for ``LINESTRING EMPTY``).

    Raises:
        ValueError: not a LineString, or unparsable.
    """
    text = text.strip()
    match = _LINESTRING.match(text.upper())
    if match is None:
        kind = re.match(r"[A-Za-z]*", text).group(0).upper()
        if kind and kind != "LINESTRING":
            raise ValueError(f"expected a LINESTRING, found {kind}")
        raise ValueError(f"unparsable WKT {text[:80]!r}")
    if match.group(1):
        return np.zeros((0, 2))
    body = match.group(2)
    try:
        vertices = np.array(body.replace(",", " ").split(), dtype=float)
        if len(vertices) == 2 * (body.count(",") + 1):
            vertices = vertices.reshape(-1, 2)
        else:  # three or four numbers per vertex (Z, M): the scorer reads x and y
            vertices = np.array([p.split()[:2] for p in body.split(",")], dtype=float)
    except ValueError:
        raise ValueError(f"unparsable WKT {text[:80]!r}") from None
    if vertices.ndim != 2 or vertices.shape[1] != 2:
        raise ValueError(f"unparsable WKT {text[:80]!r}")
    if not np.isfinite(vertices).all():
        raise ValueError(f"non-finite coordinate in {text[:80]!r}")
    if (np.abs(vertices) > COORDINATE_LIMIT).any():
        raise ValueError(f"coordinate beyond +-{COORDINATE_LIMIT:g} px in {text[:80]!r}")
    return vertices


def read_roads_csv(path: str | Path) -> dict[str, list[np.ndarray]]:
    """Read a SpaceNet 3 CSV (``ImageId,WKT_Pix``) into each image's roads, in file order.

    UTF-8 with or without a byte-order mark, or UTF-16/32 with one (see
    :mod:`aerialsam.inputs.text`); anything else is refused. ``LINESTRING EMPTY`` gives an
    image with an empty road list. Checks what the official scorer checks (see the module notes).

    Raises:
        InputError: a missing or unreadable file, a wrong header, a malformed row, or roads
            the scorer refuses: one line naming the file, the line, the image and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    ids, lines, texts = [], [], []
    try:
        with open_text(path) as handle:
            rows = csv.reader(handle)
            header = next(rows, None)
            if header is None:  # an empty file: no image at all
                log.warning("%s is empty", path)
                return {}
            image_col, wkt_col = _road_columns(path, header)
            last = wkt_col == len(header) - 1
            for row in rows:
                first = row[0].strip() if row else ""
                if not first or first.startswith("#") or first.lower().startswith("imageid"):
                    continue
                if len(row) <= max(image_col, wkt_col):
                    raise InputError(f"{path}, line {rows.line_num}",
                                     f"expected ImageId,WKT_Pix, found {len(row)} field(s)")
                ids.append(row[image_col].strip())
                lines.append(rows.line_num)
                # unquoted WKT spans several fields; the scorer reads the rest of the line
                texts.append(",".join(row[wkt_col:]) if last else row[wkt_col])
    except csv.Error as exc:
        raise InputError(path, f"not a readable CSV ({exc})") from None
    try:
        parsed = _parse_linestrings(texts)
    except _BadRow as bad:
        raise InputError(f"{path}, line {lines[bad.row]}",
                         f"image {ids[bad.row]}: {bad.problem}") from None
    roads: dict[str, list[np.ndarray]] = {}
    first_line: dict[str, list[int]] = {}
    for image_id, line, road in zip(ids, lines, parsed, strict=True):
        roads.setdefault(image_id, []).append(road)
        first_line.setdefault(image_id, []).append(line)
    for image_id, image_roads in roads.items():
        _check_image_id(path, image_id, first_line[image_id][0])
        problem = road_problem(image_roads)
        if problem is not None:
            raise InputError(f"{path}, line {first_line[image_id][problem[0]]}",
                             f"image {image_id}: {problem[1]}")
    return roads


class _BadRow(Exception):
    """Row ``row`` of a CSV holds no LineString the scorer reads; ``problem`` says why."""

    def __init__(self, row: int, problem: str) -> None:
        super().__init__(problem)
        self.row, self.problem = row, problem


def _parse_linestrings(texts: list[str]) -> list[np.ndarray]:
    """:func:`_parse_linestring` of every text, the numbers of all rows parsed at once.

    Raises:
        _BadRow: the first row that does not parse.
    """
    bodies, where, out = [], [], [np.zeros((0, 2))] * len(texts)
    for i, text in enumerate(texts):
        match = _LINESTRING.match(text.strip().upper())
        if match is None:
            _parse_one(i, text)  # raises with the reason
        if not match.group(1):
            bodies.append(text[text.index("(") + 1:text.rindex(")")])
            where.append(i)
    if not bodies:
        return out
    tokens = [body.replace(",", " ").split() for body in bodies]
    sizes = np.array([len(t) for t in tokens])
    points = np.array([body.count(",") + 1 for body in bodies])
    try:
        if (sizes != 2 * points).any():
            raise ValueError("not two numbers per vertex")
        numbers = np.array([v for t in tokens for v in t], dtype=float).reshape(-1, 2)
    except ValueError:  # some row is unusual or wrong: parse row by row
        return [out[i] if i not in set(where) else _parse_one(i, texts[i])
                for i in range(len(texts))]
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(numbers) <= COORDINATE_LIMIT).all(axis=1)  # NaN and infinity too
    ends = np.cumsum(points)
    if bad.any():
        row = int(np.searchsorted(ends, np.flatnonzero(bad)[0], side="right"))
        _parse_one(where[row], texts[where[row]])
    for i, lo, hi in zip(where, (ends - points).tolist(), ends.tolist(), strict=True):
        out[i] = numbers[lo:hi]
    return out


def _parse_one(row: int, text: str) -> np.ndarray:
    """:func:`_parse_linestring` of one row, its error as :class:`_BadRow`."""
    try:
        return _parse_linestring(text)
    except ValueError as exc:
        raise _BadRow(row, str(exc)) from None


def _road_columns(path: Path, header: list[str] | None) -> tuple[int, int]:
    """Positions of ImageId and WKT_Pix in a header row."""
    names = [h.strip() for h in header or []]
    if "PolygonWKT_Pix" in names:
        raise InputError(path, "has building polygons (PolygonWKT_Pix), not roads (WKT_Pix)")
    for needed in ("ImageId", "WKT_Pix"):
        if needed not in names:
            raise InputError(path, f"missing column {needed!r} (roads need ImageId,WKT_Pix; "
                                   f"found {names})")
    return names.index("ImageId"), names.index("WKT_Pix")


def _check_image_id(path: Path, image_id: str, line: int) -> None:
    """Fail on an image id that names no SpaceNet AOI (the AOI is its city)."""
    try:
        parse_image_id(image_id)
    except InputError:
        raise InputError(f"{path}, line {line}",
                         f"ImageId {image_id!r} names no SpaceNet image "
                         "(AOI_<n>_<City>_img<N>)") from None
