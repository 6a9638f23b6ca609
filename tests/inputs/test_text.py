"""The encoding rule: UTF-8 (BOM or not) read, marked UTF-16/32 read, anything else refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from aerialsam.errors import InputError
from aerialsam.inputs import decode_text, open_text, read_json, read_text


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_utf8_and_marked_unicode_are_read(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "f.csv"
    data = "ImageId,Note\r\nAOI_2_Vegas_img1,Café\r\n".encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    assert read_text(path) == "ImageId,Note\r\nAOI_2_Vegas_img1,Café\r\n"
    assert open_text(path).readline() == "ImageId,Note\r\n"  # line ends untouched for csv


@pytest.mark.parametrize(("data", "message"), [
    ("a,b\nCafé,1\n".encode("latin-1"), "not UTF-8 text: byte 0xe9 at byte offset 7 (line 2)"),
    ("a,b\n".encode("utf-16-le"), "NUL byte at byte offset 1 (a binary file, or UTF-16 without"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not UTF-8 text: byte 0x89 at byte offset 0"),
    (b"\xef\xbb\xbfok\xff", "byte 0xff at byte offset 5"),
    (b"\xff\xfe" + b"\x00\xd8", "not valid UTF-16 text after its byte-order mark"),
])
def test_other_bytes_are_refused_with_the_offset(data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) \
            as caught:
        decode_text(data, "labels.csv")
    assert caught.value.source == "labels.csv" and "\n" not in str(caught.value)


def test_missing_folder_and_json_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_text(tmp_path / "absent.json")
    with pytest.raises(InputError, match="is a folder, not a file"):
        read_text(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": [1,\n 2')
    with pytest.raises(InputError, match=r"not valid JSON \(line 2, column 3"):
        read_json(broken)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="nested too deeply"):
        read_json(deep)
