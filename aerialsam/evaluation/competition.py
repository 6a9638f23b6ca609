"""The SpaceNet 2 competition's published results (2017), the reference rows of the tables.

F1 per city of the three winners, scored by the SpaceNet team on the competition's own test
set, which has no public labels: they are a reference, not a comparison on the same tiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COMPETITION = pd.DataFrame(
    {"overall": [0.688, 0.643, 0.579],
     "Las Vegas": [0.885, np.nan, np.nan], "Paris": [0.745, np.nan, np.nan],
     "Shanghai": [0.597, np.nan, np.nan], "Khartoum": [0.544, np.nan, np.nan]},
    index=pd.Index(["XD_XD (1st)", "wleite (2nd)", "nofto (3rd)"], name="SpaceNet 2 final"))
"""SpaceNet 2 final leaderboard, F1 at IoU 0.5 (per-city scores published for the winner)."""


def competition_table() -> pd.DataFrame:
    """The SpaceNet 2 final results (F1 at IoU 0.5): the bar this book tries to reach."""
    return COMPETITION.copy()


CITY = {"AOI_2_Vegas": "Las Vegas", "AOI_3_Paris": "Paris", "AOI_4_Shanghai": "Shanghai",
        "AOI_5_Khartoum": "Khartoum"}
"""Column names of the tables (the competition's)."""
