"""Stage ``runs/``: fine-tuning SAM 2 and training the U-Net, with one loop for every model.

The run configuration (:mod:`~aerialsam.training.train_config`), the model kinds and what
differs between them (:mod:`~aerialsam.training.kinds`), chips and masks as torch datasets
(:mod:`~aerialsam.training.datasets`) with aligned augmentations
(:mod:`~aerialsam.training.augment`), losses per model (:mod:`~aerialsam.training.tasks`), the
loop (:mod:`~aerialsam.training.loop`), its logs (:mod:`~aerialsam.training.logs`), validation
by SpaceNet F1 (:mod:`~aerialsam.training.validation`), run folders and checkpoints
(:mod:`~aerialsam.training.runs`) and the encoder-feature cache
(:mod:`~aerialsam.training.embedding_cache`).
"""

__all__ = ["augment", "datasets", "embedding_cache", "kinds", "logs", "loop", "runs", "tasks",
           "train_config", "validation"]
