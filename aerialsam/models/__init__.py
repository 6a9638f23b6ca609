"""The networks: SAM 2.1 and the U-Net, built, loaded and called.

SAM 2.1 variants and input sizes (:mod:`~aerialsam.models.variants`), building and loading the
model (:mod:`~aerialsam.models.sam2`), finding and downloading its checkpoints
(:mod:`~aerialsam.models.checkpoints`), batched encoder and decoder calls
(:mod:`~aerialsam.models.sam2_calls`), LoRA adapters (:mod:`~aerialsam.models.lora`) and the
monai U-Net (:mod:`~aerialsam.models.unet`). Nothing here knows about tiles or training runs.
"""

__all__ = ["checkpoints", "lora", "sam2", "sam2_calls", "unet", "variants"]
