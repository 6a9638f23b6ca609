"""Display helpers of the book's tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aerialsam.evaluation.competition import competition_table, roads_competition_table
from aerialsam.viz.tables import dashed


def test_dashed_shows_missing_values_as_dashes_and_keeps_the_rest() -> None:
    table = pd.DataFrame({"f1": [0.5, np.nan], "tp": pd.array([3, None], dtype="Int64")},
                         index=["a", "overall"])
    shown = dashed(table)
    assert shown.loc["overall"].tolist() == ["—", "—"]
    assert shown.loc["a"].tolist() == [0.5, 3]
    assert table["f1"].isna().sum() == 1  # the original is untouched
    html = dashed(competition_table())._repr_html_()
    assert "NaN" not in html and "0.885" in html


def test_roads_leaderboard_overall_is_the_mean_of_the_cities() -> None:
    table = roads_competition_table()
    cities = table.loc["albu (1st)", ["Las Vegas", "Paris", "Shanghai", "Khartoum"]]
    assert round(cities.mean(), 4) == table.loc["albu (1st)", "overall"] == 0.6663
    assert list(table["overall"]) == sorted(table["overall"], reverse=True)
