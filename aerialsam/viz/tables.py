"""Tables as the book shows them."""

from __future__ import annotations

import pandas as pd


def dashed(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` for display, with a dash where a value is missing (not measured, not published).

    A dash, not ``NaN`` or ``<NA>``, which read as errors on a rendered page.

    The columns become objects: use the result for showing only, never for computing.
    """
    return table.astype(object).where(table.notna(), "—")
