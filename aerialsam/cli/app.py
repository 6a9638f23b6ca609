"""The ``aerialsam`` command: the parser of every subcommand, and how a command is run.

Each subcommand has an ``add_<name>`` function in the module of its family that declares its
arguments and sets ``handler``; the handler calls into the library and returns an exit code.

What reaches the user on stderr:

- a user error (:class:`aerialsam.errors.AerialSamError`, an :class:`OSError` such as a missing
  or unwritable path or a full disk, a bad option the parser refuses, running out of memory)
  is one line, ``aerialsam COMMAND: error: ...``, exit code 2, no traceback;
- anything else is a bug in aerialsam: one line says so and how to report it, then the
  exception goes on with its traceback (exit code 1), so that bugs are never hidden;
- Python warnings go to logging, shown with ``-v`` only: a failing command prints one line.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import NoReturn

from rasterio.errors import NotGeoreferencedWarning

from aerialsam import __version__
from aerialsam.cli.data import add_demo, add_download
from aerialsam.cli.model_commands import add_evaluate, add_finetune, add_predict
from aerialsam.cli.prep import add_chip, add_masks, add_rasterize
from aerialsam.cli.score import add_score
from aerialsam.errors import AerialSamError

log = logging.getLogger("aerialsam")

REPORT = ("internal error (a bug in aerialsam; please report it with the command line and "
          "this traceback)")


class _Parser(argparse.ArgumentParser):
    """A parser whose errors are one line (no usage block), like every other error."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE`` and a pointer to ``--help``; exit with code 2."""
        self.exit(2, f"{self.prog}: error: {_one_line(message)} (see `{self.prog} --help`)\n")


class _StderrHandler(logging.Handler):
    """Log records to whatever ``sys.stderr`` is when they are emitted (it may be redirected)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Write one formatted record."""
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:  # logging's contract: emit never raises
            self.handleError(record)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``aerialsam`` command with every subcommand."""
    parser = _Parser(
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
    """Run the command line; return the process exit code (see the module notes)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a refused option (one line printed)
        return exc.code if isinstance(exc.code, int) else 2
    _setup_logging(args.verbose)
    try:
        return _handler(args.handler)(args)
    except AerialSamError as exc:
        return _error(args.command, str(exc))
    except OSError as exc:
        return _error(args.command, _os_error(exc))
    except MemoryError:
        return _error(args.command, "out of memory: an input or an option (a size, a batch, a "
                                    "tile count) is too large for this machine")
    except KeyboardInterrupt:
        print(f"aerialsam {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # A bug, not a user error: say so in one line, and keep the traceback for the report.
        print(f"aerialsam {args.command}: {REPORT}: {type(exc).__name__}: "
              f"{_one_line(str(exc))}", file=sys.stderr)
        raise


def _setup_logging(verbose: bool) -> None:
    # Progress messages only with -v: a failing command prints one line.
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s",
                        handlers=[_StderrHandler()])
    # GDAL's own messages reach Python logging through rasterio; the error line says enough.
    logging.getLogger("rasterio").setLevel(logging.WARNING)
    # Library warnings (deprecations, GDAL notes) are for developers: shown with -v only.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.WARNING if verbose else logging.ERROR)
    warnings.simplefilter("ignore", NotGeoreferencedWarning)


def _error(command: str, message: str) -> int:
    """Print a user error as one line; return its exit code, 2."""
    print(f"aerialsam {command}: error: {_one_line(message)}", file=sys.stderr)
    return 2


def _os_error(exc: OSError) -> str:
    """``path: reason`` of an OSError, or the reason alone when it names no file."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is None:
        return reason if exc.errno is None else f"{reason} (errno {exc.errno})"
    names = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
    return f"{names}: {reason}"


def _one_line(text: str) -> str:
    """``text`` on one line: its lines joined, so that an error is always one line."""
    return " / ".join(line.strip() for line in text.strip().splitlines() if line.strip())
