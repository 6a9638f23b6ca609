"""Model builders: SAM 2.1 (:mod:`aerialsam.models.sam2`) and, later, the U-Net baseline."""
