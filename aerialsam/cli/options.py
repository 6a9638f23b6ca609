"""Options that several commands share, declared once so that they read the same everywhere.

Declaring them loads no deep-learning stack (see :mod:`aerialsam.cli.model_commands`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aerialsam.data.spacenet import AOI_NAMES
from aerialsam.models.variants import VARIANT_NAMES

ALL_AOIS = "all"
"""The ``--aoi`` value that selects the four cities."""


def add_aoi(parser: argparse.ArgumentParser) -> None:
    """``--aoi``: the cities a command works on, ``all`` by default (see :func:`selected_aois`)."""
    parser.add_argument("--aoi", default=ALL_AOIS, metavar="AOIS",
                        help=f"comma-separated AOIs ({', '.join(AOI_NAMES)} or full names such "
                             "as AOI_2_Vegas), or all (default)")


def selected_aois(value: str) -> list[str]:
    """The AOIs of an ``--aoi`` value: its comma-separated names, or the four for ``all``."""
    if value.strip() == ALL_AOIS:
        return list(AOI_NAMES)
    return [name.strip() for name in value.split(",") if name.strip()]


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
