"""What only the book needs: its runs and studies, cost estimates, executing the notebooks.

The fine-tuning runs the chapters share and their examples (:mod:`~aerialsam.book.finetune`,
:mod:`~aerialsam.book.chapter_runs`), what runs cost (:mod:`~aerialsam.book.costs`), chapter 05's
simulated proposals (:mod:`~aerialsam.book.metric`), chapter 06's zero-shot studies
(:mod:`~aerialsam.book.zero_shot`), chapter 09's studies (:mod:`~aerialsam.book.studies`), and
papermill execution of the whole book (:mod:`~aerialsam.book.notebooks`, which needs the
``book`` extra).
"""

__all__ = ["chapter_runs", "costs", "finetune", "metric", "notebooks", "studies", "zero_shot"]
