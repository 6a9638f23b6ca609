"""Stage ``reports/``: every model scored per city on held-out tiles, and the analyses.

Per-city evaluation of runs and zero-shot SAM 2 (:mod:`~aerialsam.evaluation.per_city`), the
tables computed from its results (:mod:`~aerialsam.evaluation.analysis`) and the 2017
competition's published scores (:mod:`~aerialsam.evaluation.competition`). Figures of these
tables are in :mod:`aerialsam.viz`.
"""

__all__ = ["analysis", "competition", "per_city"]
