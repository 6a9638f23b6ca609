"""Exceptions that carry a message meant for the user.

The command line prints such an error as one line and exits non-zero, without a traceback:
they describe bad input (a missing file, a wrong CRS, a malformed CSV), not bugs.
"""

from __future__ import annotations

from pathlib import Path


class AerialSamError(Exception):
    """Base class of every error aerialsam raises on purpose."""


class InputError(AerialSamError):
    """Bad user input: names the file (or argument) and what is wrong with it."""

    def __init__(self, source: str | Path, problem: str) -> None:
        """Name the input and its problem; the message reads ``source: problem``.

        Args:
            source: the file (or argument) at fault.
            problem: what is wrong with it.
        """
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")
