"""YAML mappings checked against a dataclass: the fields' annotations are the schema.

:func:`check_fields` reads the type of every field of a dataclass from its annotations
(``dataclasses.fields`` and ``typing.get_type_hints``), so a field added to the class is
checked without a line here. A value is refused with one line naming the source and the key
(``run.yaml: steps: expected an integer, found string 'abc'``). The rules, decided once:

- ``bool`` takes only a YAML boolean (``true``, ``false``; YAML 1.1 also reads ``yes``/``no``
  unquoted as booleans): never the string ``"yes"``, never ``1``;
- ``int`` takes an integer, or a float that is a whole number (``1000.0``, ``1.0e+4``): never
  a bool, never ``2.5``;
- ``float`` takes any finite number (an integer too), never NaN or infinity (``.nan``,
  ``.inf``): a NaN learning rate is refused before any work;
- both number kinds also take the exponent forms YAML 1.2 reads as numbers but PyYAML leaves
  as strings (``3e-4``, ``1e4``), which people write for learning rates and step counts;
- ``str`` takes a string only (quote a name that looks like a number);
- ``X | None`` also takes ``null`` (or an empty value); ``tuple[X, ...]`` takes a list,
  each item checked as ``X``; ``Literal[...]`` takes one of its values; ``dict`` takes a
  mapping with string keys; a dataclass type takes an instance or a mapping of its fields.

Bounds are not in the annotations: callers pass a :class:`Range` per field, checked here and
by :func:`check_ranges` (for objects made in code, from ``__post_init__``).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from aerialsam.errors import InputError
from aerialsam.inputs.text import read_text

_EXPONENT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+$")
"""Numbers with an exponent that YAML 1.2 reads and PyYAML (YAML 1.1) leaves as strings."""
_INT_LIMIT = 2 ** 63


@dataclass(frozen=True)
class Range:
    """Bounds of a number: ``low <= value <= high`` (``low < value`` when ``low_open``).

    Attributes:
        low: the smallest value allowed (None: no bound).
        high: the largest value allowed (None: no bound).
        low_open: ``low`` itself is refused (``Range(0, low_open=True)`` is "positive").
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False

    def problem(self, value: float) -> str | None:
        """Why ``value`` is outside the bounds, or None when it is inside."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value}"
        too_low = self.low is not None and (value <= self.low if self.low_open
                                            else value < self.low)
        if not too_low and (self.high is None or value <= self.high):
            return None
        if self.low is not None and self.high is not None:
            return f"must be between {self.low} and {self.high}, got {value}"
        if self.low is None:
            return f"must be at most {self.high}, got {value}"
        if self.low_open and self.low == 0:
            return f"must be positive, got {value}"
        return f"must be {'above' if self.low_open else 'at least'} {self.low}, got {value}"


AT_LEAST_ONE = Range(1)
NON_NEGATIVE = Range(0)
POSITIVE = Range(0, low_open=True)
FRACTION = Range(0, 1)


def load_yaml(path: str | Path, what: str = "YAML") -> object:
    """The document of a YAML file (None when empty), read by the encoding rule.

    Raises:
        InputError: the file is missing, unreadable, binary or not UTF-8, or not valid YAML.
    """
    text = read_text(path)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()
        raise InputError(path, f"not valid {what} ({first[0] if first else 'unparsable'})"
                         ) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # a value PyYAML's constructors reject (a date like 2020-13-45, nesting too deep)
        raise InputError(path, f"not valid {what} ({type(exc).__name__}: {exc})") from None


def load_yaml_mapping(path: str | Path, what: str = "YAML") -> dict[str, Any]:
    """The mapping of a YAML file of keys (an empty file gives ``{}``).

    Raises:
        InputError: as :func:`load_yaml`, or a document that is not a mapping with string keys.
    """
    document = load_yaml(path, what)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise InputError(path, f"expected a mapping of keys, found {_describe(document)}")
    for key in document:
        if not isinstance(key, str):
            raise InputError(path, f"key {key!r} is not a name")
    return document


def field_types(cls: type) -> dict[str, Any]:
    """Each field's type from a dataclass's annotations, every one checked to be supported.

    Raises:
        TypeError: a field whose annotation :func:`check_fields` cannot check (a bug to fix
            here when a field of a new kind is added).
    """
    hints = typing.get_type_hints(cls)
    types_ = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    for name, hint in types_.items():
        if not _supported(hint):
            raise TypeError(f"{cls.__name__}.{name}: no schema rule for the type {hint!r}")
    return types_


def check_fields(cls: type, values: Mapping[str, Any], source: str | Path,
                 ranges: Mapping[str, Range] | None = None) -> dict[str, Any]:
    """``values`` checked and converted against the fields of the dataclass ``cls``.

    Args:
        cls: the dataclass whose field annotations are the schema.
        values: a mapping of some of its fields (from YAML, JSON or keyword arguments).
        source: the file or origin of ``values``, named in errors.
        ranges: bounds of some numeric fields.

    Returns:
        A new dict of the same keys, values converted (lists to tuples, whole floats to int,
        exponent strings to numbers).

    Raises:
        InputError: an unknown key (all named) or a value its field refuses.
    """
    schema = field_types(cls)
    keys = [k for k in values if not isinstance(k, str)]
    if keys:
        raise InputError(source, f"key {keys[0]!r} is not a name")
    unknown = sorted(set(values) - set(schema))
    if unknown:
        raise InputError(source, f"unknown key(s) {unknown}; known keys: {sorted(schema)}")
    checked = {}
    for key, value in values.items():
        converted, problem = _convert(schema[key], value)
        if problem is None and ranges and key in ranges and _is_number(converted):
            problem = ranges[key].problem(converted)
        if problem is not None:
            raise InputError(source, f"{key}: {problem}")
        checked[key] = converted
    return checked


def check_ranges(obj: object, ranges: Mapping[str, Range]) -> None:
    """Refuse a dataclass instance with a float field not finite or a field out of ``ranges``.

    Raises:
        InputError: naming the field (the source of an object made in code is its field).
    """
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if not _is_number(value):
            continue
        bounds = ranges.get(field.name, Range())
        problem = bounds.problem(value)
        if problem is not None:
            raise InputError(field.name, problem)


def _is_number(value: object) -> bool:
    """An int or float (numpy's too), never a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _supported(hint: Any) -> bool:  # noqa: ANN401 (any annotation)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (Any, bool, int, float, str, type(None)) or dataclasses.is_dataclass(hint):
        return True
    if origin in (typing.Union, types.UnionType):
        return all(_supported(a) for a in args)
    if origin is typing.Literal:
        return True
    if origin in (tuple, list):
        return all(_supported(a) for a in args if a is not Ellipsis)
    if origin is dict:
        return args[0] is str and _supported(args[1])
    return False


def _convert(hint: Any, value: Any) -> tuple[Any, str | None]:  # noqa: ANN401 (any value)
    """``(converted value, None)``, or ``(value, why the value does not fit hint)``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value, None
    if origin in (typing.Union, types.UnionType):
        return _convert_union(args, value)
    if origin is typing.Literal:
        if any(value == arg and type(value) is type(arg) for arg in args):
            return value, None
        return value, f"expected one of {', '.join(map(repr, args))}, found {_describe(value)}"
    if origin in (tuple, list):
        return _convert_sequence(origin, args, value)
    if origin is dict:
        return _convert_mapping(args[1], value)
    if dataclasses.is_dataclass(hint):
        return _convert_dataclass(hint, value)
    return _SCALARS[hint](value)


def _convert_union(args: tuple, value: Any) -> tuple[Any, str | None]:  # noqa: ANN401
    if value is None and type(None) in args:
        return None, None
    problems = []
    for arg in (a for a in args if a is not type(None)):
        converted, problem = _convert(arg, value)
        if problem is None:
            return converted, None
        problems.append(problem)
    if type(None) in args and len(problems) == 1:
        return value, problems[0].replace(", found", " or null, found", 1)
    return value, " / ".join(problems)


def _convert_sequence(origin: type, args: tuple, value: Any) -> tuple[Any, str | None]:  # noqa: ANN401
    if not isinstance(value, (list, tuple)):
        return value, f"expected a list, found {_describe(value)}"
    if origin is tuple and args and args[-1] is not Ellipsis and len(args) != len(value):
        return value, f"expected a list of {len(args)} items, found {len(value)}"
    items = []
    for i, item in enumerate(value):
        item_type = args[0] if origin is list or args[-1] is Ellipsis else args[i]
        converted, problem = _convert(item_type, item) if args else (item, None)
        if problem is not None:
            return value, f"item {i}: {problem}"
        items.append(converted)
    return (tuple(items) if origin is tuple else items), None


def _convert_mapping(value_type: Any, value: Any) -> tuple[Any, str | None]:  # noqa: ANN401
    if not isinstance(value, dict):
        return value, f"expected a mapping, found {_describe(value)}"
    out = {}
    for key, item in value.items():
        if not isinstance(key, str):
            return value, f"key {key!r} is not a name"
        converted, problem = _convert(value_type, item)
        if problem is not None:
            return value, f"{key}: {problem}"
        out[key] = converted
    return out, None


def _convert_dataclass(cls: type, value: Any) -> tuple[Any, str | None]:  # noqa: ANN401
    if isinstance(value, cls):
        return value, None
    if not isinstance(value, dict):
        return value, f"expected a mapping of {cls.__name__} fields, found {_describe(value)}"
    try:
        return cls(**check_fields(cls, value, cls.__name__)), None
    except InputError as exc:
        return value, exc.problem if exc.source == cls.__name__ else str(exc)


def _as_bool(value: Any) -> tuple[Any, str | None]:  # noqa: ANN401
    if isinstance(value, bool):
        return value, None
    return value, f"expected true or false, found {_describe(value)}"


def _as_int(value: Any) -> tuple[Any, str | None]:  # noqa: ANN401
    if isinstance(value, str) and _EXPONENT.match(value.strip()):
        value = float(value)
    if _is_number(value) and isinstance(value, numbers.Integral):  # numpy integers too
        value = int(value)
        return value, (None if abs(value) < _INT_LIMIT else f"{value} is too large")
    if _is_number(value) and math.isfinite(value) and value == int(value) \
            and abs(value) < _INT_LIMIT:
        return int(value), None
    return value, f"expected an integer, found {_describe(value)}"


def _as_float(value: Any) -> tuple[Any, str | None]:  # noqa: ANN401
    if isinstance(value, str) and _EXPONENT.match(value.strip()):
        value = float(value)
    if not _is_number(value):
        return value, f"expected a number, found {_describe(value)}"
    try:
        number = float(value)
    except OverflowError:
        return value, f"{value} is too large"
    if not math.isfinite(number):
        return value, f"must be a finite number, found {number}"
    return number, None


def _as_str(value: Any) -> tuple[Any, str | None]:  # noqa: ANN401
    if isinstance(value, str):
        return value, None
    hint = " (quote it)" if isinstance(value, (int, float, bool)) or value is None else ""
    return value, f"expected a string, found {_describe(value)}{hint}"


def _as_none(value: Any) -> tuple[Any, str | None]:  # noqa: ANN401
    return value, None if value is None else f"expected null, found {_describe(value)}"


_SCALARS = {bool: _as_bool, int: _as_int, float: _as_float, str: _as_str,
            type(None): _as_none}


def _describe(value: object) -> str:
    """A value as an error shows it: ``string 'abc'``, ``float 2.5``, ``true``, ``a list``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return f"a list ({len(value)} items)"
    if isinstance(value, dict):
        return "a mapping"
    name = {str: "string", int: "integer", float: "float"}.get(type(value), type(value).__name__)
    text = repr(value)
    return f"{name} {text if len(text) <= 60 else text[:60] + '...'}"
