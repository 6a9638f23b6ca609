"""The ``aerialsam`` command: the parser of every subcommand, and how a command is run.

Each subcommand has an ``add_<name>`` function in the module of its family that declares its
arguments and sets ``handler``; the handler calls into the library and returns an exit code.
A user error (:class:`aerialsam.errors.AerialSamError`, a missing or unwritable path) is
printed as one line on stderr with exit code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Callable, Sequence

from rasterio.errors import NotGeoreferencedWarning

from aerialsam import __version__
from aerialsam.cli.data import add_demo, add_download
from aerialsam.cli.model_commands import add_evaluate, add_finetune, add_predict
from aerialsam.cli.prep import add_chip, add_masks, add_rasterize
from aerialsam.cli.score import add_score
from aerialsam.errors import AerialSamError

log = logging.getLogger("aerialsam")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aerialsam`` command with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="aerialsam",
        description="Buildings (SpaceNet 2) and roads (SpaceNet 3) in aerial imagery with SAM 2.")
    parser.add_argument("--version", action="version", version=f"aerialsam {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_demo, add_rasterize, add_chip, add_download, add_masks, add_score,
                add_predict, add_finetune, add_evaluate):
        add(commands)
    return parser


def _handler(handler: Callable[[argparse.Namespace], int] | str
             ) -> Callable[[argparse.Namespace], int]:
    """A command's handler; ``"module:function"`` names one whose module loads only now."""
    if callable(handler):
        return handler
    module, name = handler.split(":")
    return getattr(importlib.import_module(module), name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    args = build_parser().parse_args(argv)
    # Progress messages only with -v: a failing command prints one line.
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # GDAL's own messages reach Python logging through rasterio; the error line says enough.
    logging.getLogger("rasterio").setLevel(logging.WARNING)
    warnings.simplefilter("ignore", NotGeoreferencedWarning)
    try:
        return _handler(args.handler)(args)
    except AerialSamError as exc:
        print(f"aerialsam {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = exc.filename or "?"
        print(f"aerialsam {args.command}: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"aerialsam {args.command}: interrupted", file=sys.stderr)
        return 130
