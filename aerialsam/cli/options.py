"""Options that several commands share, declared once so that they read the same everywhere.

Declaring them loads no deep-learning stack (see :mod:`aerialsam.cli.model_commands`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aerialsam.data.spacenet import AOI_NAMES
from aerialsam.errors import InputError
from aerialsam.models.variants import VARIANT_NAMES

ALL_AOIS = "all"
"""The ``--aoi`` value that selects the four cities."""
MAX_CHIP_SIDE = 16384
"""The largest chip side ``--size`` accepts: 16 times SAM 2's input, and one uint8 RGB chip
of it already takes 768 MiB; a chip larger than its tile is padded, so this bounds memory."""


def add_aoi(parser: argparse.ArgumentParser) -> None:
    """``--aoi``: the cities a command works on, ``all`` by default (see :func:`selected_aois`)."""
    parser.add_argument("--aoi", default=ALL_AOIS, metavar="AOIS",
                        help=f"comma-separated AOIs ({', '.join(AOI_NAMES)} or full names such "
                             "as AOI_2_Vegas), or all (default)")


def selected_aois(value: str) -> list[str]:
    """The AOIs of an ``--aoi`` value: its comma-separated names, or the four for ``all``.

    Raises:
        InputError: a value that names no AOI (``--aoi ,``, ``--aoi ""``): it would
            otherwise read as no choice at all and select every AOI.
    """
    if value.strip() == ALL_AOIS:
        return list(AOI_NAMES)
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise InputError("--aoi", f"{value!r} names no AOI; give comma-separated AOIs "
                                  f"({', '.join(AOI_NAMES)}) or {ALL_AOIS}")
    return names


def add_device(parser: argparse.ArgumentParser) -> None:
    """``--device``: where the model runs (see :func:`aerialsam.device.pick_device`)."""
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")


def add_variant(parser: argparse.ArgumentParser, default: str | None, help: str) -> None:
    """``--variant``: the SAM 2.1 model size."""
    parser.add_argument("--variant", choices=VARIANT_NAMES, default=default, help=help)


def add_data(parser: argparse.ArgumentParser, holds: str) -> None:
    """``--data``: the data folder of the stages (``./data`` by default)."""
    parser.add_argument("--data", type=Path, default=Path("data"), metavar="DIR",
                        help=f"data folder holding {holds} (default ./data)")


def check_chip_size(size: int, option: str = "--size") -> int:
    """Refuse a chip side below 1 or above :data:`MAX_CHIP_SIDE`, before anything is read.

    A chip larger than a raster is padded to its full side, so an absurd ``--size`` would
    end in an allocation of ``3 x size²`` bytes per chip rather than in a message.

    Returns:
        ``size``, accepted.

    Raises:
        InputError: naming ``option``, with the memory one chip would take.
    """
    if size < 1:
        raise InputError(option, f"must be at least 1, got {size}")
    if size > MAX_CHIP_SIDE:
        gib = 3 * size**2 / 2**30
        raise InputError(option, f"{size} px chips would take {gib:,.0f} GiB each (uint8 RGB); "
                                 f"use at most {MAX_CHIP_SIDE}")
    return size


def chip_side(text: str) -> int:
    """``--size`` as the parser reads it: an integer that :func:`check_chip_size` accepts.

    The parser type of every command that takes a chip side, so that the bound is one rule
    and the refusal is the parser's one line, before any input is read.

    Raises:
        argparse.ArgumentTypeError: not an integer, or a side :func:`check_chip_size` refuses.
    """
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    try:
        return check_chip_size(size)
    except InputError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None
