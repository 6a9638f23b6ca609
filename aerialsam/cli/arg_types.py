"""Argument types for the parser: numbers checked where they are read, not deep in a command.

Each is a ``type=`` for :meth:`argparse.ArgumentParser.add_argument`: it turns the text into a
number or raises :class:`argparse.ArgumentTypeError`, which the parser prints as one line
naming the option (``aerialsam predict: error: argument --threshold: 2 is not a probability
(a number from 0 to 1)``). NaN and infinity are refused by every float type.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def finite_float(text: str) -> float:
    """Any finite number (NaN and infinity refused)."""
    return _number(text)


def probability(text: str) -> float:
    """A finite number from 0 to 1 (a threshold on probabilities or scores)."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability (a number from 0 to 1)")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (a learning rate, a width in metres)."""
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number of 0 or more."""
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
    return value


def int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer type bounded to ``low..high`` (``high`` None: no upper bound).

    Args:
        low: the smallest value allowed.
        high: the largest value allowed, e.g. a chip side a machine can hold.
    """

    def bounded(text: str) -> int:
        value = _integer(text)
        if value < low or (high is not None and value > high):
            span = f"at least {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be {span}, not {value}")
        return value

    bounded.__name__ = f"int_{low}_{high}"
    return bounded


positive_int = int_range(1)
"""An integer of 1 or more (steps, a batch size, workers, tiles)."""
non_negative_int = int_range(0)
"""An integer of 0 or more (an overlap, a seed)."""
