"""The book's figures and widgets: they draw what the other stages computed, nothing more.

No module here trains, predicts or scores: each receives tables, arrays and results, and the
widget calls :mod:`aerialsam.evaluation` to rescore a tile. One module per theme: tile images
and stretches (:mod:`~aerialsam.viz.imagery`), downloads (:mod:`~aerialsam.viz.downloads`),
chipping (:mod:`~aerialsam.viz.chipping`), training targets (:mod:`~aerialsam.viz.targets`),
the metric (:mod:`~aerialsam.viz.scoring`), predictions of SAM 2
(:mod:`~aerialsam.viz.predictions`), training curves (:mod:`~aerialsam.viz.curves`), results
(:mod:`~aerialsam.viz.results`), tables (:mod:`~aerialsam.viz.tables`) and the interactive
browser (:mod:`~aerialsam.viz.widgets`).
"""

__all__ = ["chipping", "curves", "downloads", "imagery", "predictions", "results", "scoring",
           "tables", "targets", "widgets"]
