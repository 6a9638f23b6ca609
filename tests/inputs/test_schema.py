"""The dataclass schema of YAML mappings: every annotation kind, the documented rules."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pytest

from aerialsam.errors import InputError
from aerialsam.inputs import (
    POSITIVE,
    Range,
    check_fields,
    check_ranges,
    field_types,
    load_yaml,
    load_yaml_mapping,
)


@dataclasses.dataclass(frozen=True)
class Inner:
    size: int = 1


@dataclasses.dataclass(frozen=True)
class Settings:
    name: str = ""
    steps: int = 1
    lr: float = 0.1
    flag: bool = False
    path: str | None = None
    cities: tuple[str, ...] | None = None
    pair: tuple[int, float] = (1, 1.0)
    kind: Literal["a", "b"] = "a"
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    inner: Inner = dataclasses.field(default_factory=Inner)


@pytest.mark.parametrize(("values", "expected"), [
    ({"steps": 3, "lr": 2}, {"steps": 3, "lr": 2.0}),
    ({"steps": 1000.0, "lr": "3e-4"}, {"steps": 1000, "lr": 3e-4}),  # YAML 1.2 exponents
    ({"steps": "1e4"}, {"steps": 10000}),
    ({"flag": True, "path": None}, {"flag": True, "path": None}),
    ({"cities": ["x", "y"], "pair": [2, 3]}, {"cities": ("x", "y"), "pair": (2, 3.0)}),
    ({"kind": "b", "extra": {"k": [1]}}, {"kind": "b", "extra": {"k": [1]}}),
    ({"inner": {"size": 4}}, {"inner": Inner(4)}),
])
def test_accepted_values_are_converted(values: dict, expected: dict) -> None:
    assert check_fields(Settings, values, "s.yaml") == expected


@pytest.mark.parametrize(("values", "message"), [
    ({"steps": "abc"}, "steps: expected an integer, found string 'abc'"),
    ({"steps": 2.5}, "steps: expected an integer, found float 2.5"),
    ({"steps": True}, "steps: expected an integer, found true"),
    ({"lr": float("nan")}, "lr: must be a finite number, found nan"),
    ({"lr": "fast"}, "lr: expected a number, found string 'fast'"),
    ({"lr": 10 ** 400}, "is too large"),
    ({"flag": "yes"}, "flag: expected true or false, found string 'yes'"),
    ({"flag": 1}, "flag: expected true or false, found integer 1"),
    ({"name": 2024}, "name: expected a string, found integer 2024 (quote it)"),
    ({"path": 3}, "path: expected a string or null, found integer 3"),
    ({"cities": "x"}, "cities: expected a list or null, found string 'x'"),
    ({"pair": [1]}, "pair: expected a list of 2 items, found 1"),
    ({"kind": "c"}, "kind: expected one of 'a', 'b', found string 'c'"),
    ({"extra": {1: 2}}, "extra: key 1 is not a name"),
    ({"inner": {"size": "x"}}, "inner: size: expected an integer"),
    ({"speed": 1, "colour": 2}, "unknown key(s) ['colour', 'speed']; known keys: ["),
    ({"lr": 0.0}, "lr: must be positive, got 0.0"),
])
def test_refused_values_name_source_and_key(values: dict, message: str) -> None:
    with pytest.raises(InputError) as caught:
        check_fields(Settings, values, "s.yaml", ranges={"lr": POSITIVE})
    assert caught.value.source == "s.yaml" and message in caught.value.problem


def test_unsupported_annotations_are_a_bug_not_a_user_error() -> None:
    @dataclasses.dataclass
    class Odd:
        when: complex = 0j

    with pytest.raises(TypeError, match="Odd.when: no schema rule"):
        field_types(Odd)


def test_ranges_of_objects_made_in_code() -> None:
    check_ranges(Settings(lr=0.5), {"lr": Range(0, 1)})
    with pytest.raises(InputError, match="must be between 0 and 1, got 2.0") as caught:
        check_ranges(Settings(lr=2.0), {"lr": Range(0, 1)})
    assert caught.value.source == "lr"
    with pytest.raises(InputError, match="must be a finite number, got inf"):
        check_ranges(Settings(lr=float("inf")), {})


@pytest.mark.parametrize(("text", "message"), [
    (b"\x00\x01binary", "not UTF-8 text"),
    (b"a: [1", "not valid YAML"),
    (b"a: 2020-13-45", "not valid YAML (ValueError: month must be in 1..12)"),
    (b"- 1\n", "expected a mapping of keys, found a list (1 items)"),
    (b"1: 2\n", "key 1 is not a name"),
])
def test_yaml_files_that_are_no_mapping(tmp_path: Path, text: bytes, message: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(text)
    with pytest.raises(InputError) as caught:
        load_yaml_mapping(path)
    assert message in str(caught.value)


def test_empty_yaml_is_an_empty_mapping(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("# nothing\n")
    assert load_yaml(path) is None and load_yaml_mapping(path) == {}
