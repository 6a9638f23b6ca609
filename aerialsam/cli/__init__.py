"""The ``aerialsam`` command: a thin, torch-free parser over the library.

:mod:`~aerialsam.cli.app` builds the parser and runs a command; :mod:`~aerialsam.cli.args`
declares the options shared by several commands (``--aoi`` once); one module per command
family (:mod:`~aerialsam.cli.data`, :mod:`~aerialsam.cli.prep`, :mod:`~aerialsam.cli.score`,
:mod:`~aerialsam.cli.predict`, :mod:`~aerialsam.cli.finetune`,
:mod:`~aerialsam.cli.evaluate`) holds its handlers, and the ones that need torch are loaded
only when they run.
"""

from aerialsam.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
