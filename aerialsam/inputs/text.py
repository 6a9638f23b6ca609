"""Text files from users: one encoding rule for every CSV, GeoJSON, JSON and YAML read.

The rule: UTF-8, with or without a byte-order mark, is read. UTF-16 and UTF-32 are read only
with their byte-order mark, which makes them unambiguous (spreadsheet programs write such
files). Anything else (Latin-1, UTF-16 without a mark, a binary file) is refused with one
line naming the file, the byte offset of the first byte that is not UTF-8 text and what to do
about it; a NUL byte marks a binary file even where the bytes happen to be valid UTF-8.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from aerialsam.errors import InputError

UTF8_BOM = b"\xef\xbb\xbf"
# UTF-32-LE's mark begins with UTF-16-LE's, so the longer marks are tried first.
_MARKED = ((b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
           (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
           (b"\xff\xfe", "utf-16-le", "UTF-16"), (b"\xfe\xff", "utf-16-be", "UTF-16"))


def decode_text(data: bytes, source: str | Path) -> str:
    """Decode a file's bytes by the encoding rule of this module, without the byte-order mark.

    Args:
        data: the file's content.
        source: the file, named in errors.

    Raises:
        InputError: bytes that are not UTF-8 (or marked UTF-16/32) text, or a NUL byte.
    """
    for mark, codec, name in _MARKED:
        if data.startswith(mark):
            return _decode_marked(data, mark, codec, name, source)
    start = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    nul = data.find(b"\x00", start)
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        if not 0 <= nul < offset:
            line = data.count(b"\n", 0, offset) + 1
            raise InputError(source, f"not UTF-8 text: byte 0x{data[offset]:02x} at byte "
                                     f"offset {offset} (line {line}); save the file as "
                                     "UTF-8") from None
    # the first bad byte is a NUL: say what such files usually are
    if nul >= 0:
        raise InputError(source, f"not UTF-8 text: NUL byte at byte offset {nul} (a binary "
                                 "file, or UTF-16 without a byte-order mark?)")
    return text


def _decode_marked(data: bytes, mark: bytes, codec: str, name: str, source: str | Path) -> str:
    """Decode UTF-16 or UTF-32 text after its byte-order mark."""
    try:
        text = data[len(mark):].decode(codec)
    except UnicodeDecodeError as exc:
        raise InputError(source, f"not valid {name} text after its byte-order mark: byte "
                                 f"offset {len(mark) + exc.start}; save the file as "
                                 "UTF-8") from None
    nul = text.find("\x00")
    if nul >= 0:
        offset = len(mark) + len(text[:nul].encode(codec))
        raise InputError(source, f"not text: NUL character at byte offset {offset}")
    return text


def read_bytes(path: str | Path) -> bytes:
    """A file's content, every failure an :class:`InputError` naming the file.

    Raises:
        InputError: the file is missing, a folder, or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if path.is_dir():
        raise InputError(path, "is a folder, not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read ({exc.strerror or exc})") from None


def read_text(path: str | Path) -> str:
    """A text file's content, decoded by the encoding rule of this module.

    Line ends are kept as they are in the file (CR LF stays), as the csv module wants.

    Raises:
        InputError: the file is missing or unreadable, or is not text by the rule.
    """
    return decode_text(read_bytes(path), path)


def open_text(path: str | Path) -> io.StringIO:
    """A text stream over a decoded file (line ends untouched), ready for :func:`csv.reader`.

    Raises:
        InputError: as :func:`read_text`.
    """
    return io.StringIO(read_text(path), newline="")


def parse_json(text: str, source: str | Path, what: str = "JSON") -> object:
    """Parse JSON text; a syntax error names its line and column.

    ``NaN`` and ``Infinity`` parse to floats: the readers that take numbers refuse them where
    they matter.

    Raises:
        InputError: not valid JSON, or nested too deeply to read.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(source, f"not valid {what} (line {exc.lineno}, column {exc.colno}: "
                                 f"{exc.msg})") from None
    except RecursionError:
        raise InputError(source, f"not valid {what}: nested too deeply") from None


def read_json(path: str | Path, what: str = "JSON") -> object:
    """A JSON file's document (see :func:`parse_json`), decoded by the encoding rule.

    Raises:
        InputError: the file is missing, unreadable, not text, or not valid JSON.
    """
    return parse_json(read_text(path), path, what)
