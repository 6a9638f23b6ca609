"""The SpaceNet 2 and 3 competitions' published results (2017): the tables' reference rows.

Buildings: F1 per city of the SpaceNet 2 winners. Roads: APLS of the SpaceNet 3 winners.
Both were scored by the SpaceNet team on the competitions' own test sets, which have no
public labels: they are a reference, not a comparison on the same tiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CITY = {"AOI_2_Vegas": "Las Vegas", "AOI_3_Paris": "Paris", "AOI_4_Shanghai": "Shanghai",
        "AOI_5_Khartoum": "Khartoum"}
"""Column names of the tables (the competition's)."""

COMPETITION = pd.DataFrame(
    {"overall": [0.688, 0.643, 0.579],
     "Las Vegas": [0.885, np.nan, np.nan], "Paris": [0.745, np.nan, np.nan],
     "Shanghai": [0.597, np.nan, np.nan], "Khartoum": [0.544, np.nan, np.nan]},
    index=pd.Index(["XD_XD (1st)", "wleite (2nd)", "nofto (3rd)"], name="SpaceNet 2 final"))
"""SpaceNet 2 final leaderboard, F1 at IoU 0.5 (per-city scores published for the winner)."""

ROADS_COMPETITION = pd.DataFrame(
    {"overall": [0.6663, 0.6661, 0.6660, 0.6567, 0.6284],
     "Las Vegas": [0.7977] + [np.nan] * 4, "Paris": [0.6040] + [np.nan] * 4,
     "Shanghai": [0.6543] + [np.nan] * 4, "Khartoum": [0.6093] + [np.nan] * 4},
    index=pd.Index(["albu (1st)", "cannab (2nd)", "pfr (3rd)", "selim_sef (4th)",
                    "fbastani (5th)"], name="SpaceNet 3 final"))
"""SpaceNet 3 final leaderboard, APLS (per-city scores published for the winner; overall is
the mean of the four cities: (0.7977 + 0.6040 + 0.6543 + 0.6093) / 4 = 0.6663)."""


def competition_table() -> pd.DataFrame:
    """The SpaceNet 2 final results (F1 at IoU 0.5): the bar the building chapters aim at."""
    return COMPETITION.copy()


def roads_competition_table() -> pd.DataFrame:
    """The SpaceNet 3 final results (APLS): the bar the road chapters aim at."""
    return ROADS_COMPETITION.copy()
