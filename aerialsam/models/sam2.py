"""Build and load SAM 2.1 (tiny, small, base_plus, large).

Checkpoints are found by :mod:`aerialsam.models.checkpoints` (explicit file, cache, download).
``"random"`` builds an untrained model, for the synthetic ``smoke``/``demo`` profiles only,
and says so loudly.

The model may be built at a reduced ``image_size`` (256 or 512 for CPU work): every size in
SAM 2's model code derives from ``model.image_size`` except the image predictor's backbone
feature sizes, hard-coded for 1024 px, which :func:`make_predictor` sets right. The weights do
not depend on the input size, so official 1024-px checkpoints load at any size.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from sam2.build_sam import build_sam2
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor

from aerialsam.device import pick_device
from aerialsam.io import atomic_path
from aerialsam.models.checkpoints import CheckpointError, read_checkpoint, resolve_checkpoint
from aerialsam.models.variants import RANDOM, VARIANTS, check_image_size, get_variant

log = logging.getLogger(__name__)

BACKBONE_STRIDES = (4, 8, 16)
"""Strides of the three backbone feature maps the mask decoder uses (high-res to embedding)."""
# Keys SAM 2.1 added to SAM 2.0: a 2.0 checkpoint lacks exactly these.
_SAM21_ONLY_KEYS = frozenset({"no_obj_embed_spatial", "obj_ptr_tpos_proj.weight",
                              "obj_ptr_tpos_proj.bias"})
_PATCH_KEY = "image_encoder.trunk.patch_embed.proj.weight"
_BLOCKS_PREFIX = "image_encoder.trunk.blocks."


def guess_variant(state: dict[str, torch.Tensor]) -> str | None:
    """The SAM 2 variant a state dict looks like (patch width and block count), or ``None``."""
    patch = state.get(_PATCH_KEY)
    if not isinstance(patch, torch.Tensor):
        return None
    blocks = {k[len(_BLOCKS_PREFIX):].split(".")[0] for k in state if k.startswith(_BLOCKS_PREFIX)}
    for v in VARIANTS.values():
        if (v.embed_dim, v.blocks) == (patch.shape[0], len(blocks)):
            return v.name
    return None


def check_state_dict(model: SAM2Base, state: dict[str, torch.Tensor], variant: str,
                     path: str | Path) -> None:
    """Refuse a state dict whose keys or shapes differ from ``model``'s, saying why.

    Raises:
        CheckpointError: missing or unexpected keys, or mismatched shapes; the message names
            the variant the file looks like when that can be told.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(state)
                        if tuple(expected[k].shape) != tuple(state[k].shape))
    if not (missing or unexpected or mismatched):
        return
    example = (missing or unexpected or mismatched)[0]
    detail = (f"{len(missing)} missing keys, {len(unexpected)} unexpected keys, "
              f"{len(mismatched)} shape mismatches, e.g. {example!r}")
    guess = guess_variant(state)
    if guess is not None and guess != variant:
        cause = f"it looks like a {guess!r} checkpoint, not {variant!r}"
    elif not unexpected and not mismatched and set(missing) <= _SAM21_ONLY_KEYS:
        cause = (f"it looks like a SAM 2.0 checkpoint; this needs SAM 2.1 "
                 f"({get_variant(variant).filename})")
    else:
        cause = f"it is not a SAM 2.1 {variant!r} checkpoint"
    raise CheckpointError(path, f"does not match SAM 2.1 {variant!r}: {cause} ({detail})")


def random_sam2(variant: str = "tiny", image_size: int = 1024, seed: int = 0) -> SAM2Base:
    """A randomly initialised SAM 2.1 model on the CPU, in eval mode (``seed`` fixes the weights).

    The global random state is left as it was.
    """
    config = get_variant(variant).config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_sam2(config, None, device="cpu", mode="eval",
                          hydra_overrides_extra=_size_overrides(check_image_size(image_size)))


def _size_overrides(image_size: int) -> list[str]:
    """Hydra overrides for an input size; the model derives its prompt encoder from it.

    The other two only matter for SAM 2's video memory and compile warm-up, both of which would
    recompute them on the fly; they are set so that the model is consistent throughout.
    """
    side = image_size // BACKBONE_STRIDES[-1]
    attention = "++model.memory_attention.layer"
    return [f"++model.image_size={image_size}",
            f"++model.image_encoder.neck.position_encoding.image_size={image_size}",
            f"{attention}.self_attention.feat_sizes=[{side},{side}]",
            f"{attention}.cross_attention.feat_sizes=[{side},{side}]"]


def load_sam2(variant: str = "tiny", checkpoint: str | Path | None = None,
              device: str | torch.device | None = None, image_size: int = 1024,
              base: str | None = None) -> SAM2Base:
    """A SAM 2.1 model with its weights, on ``device``, in eval mode.

    Args:
        variant: ``tiny``, ``small``, ``base_plus`` or ``large``.
        checkpoint: a file path; ``None`` to use the cache (downloading if needed); or
            ``"random"`` for untrained weights (seed 0), for synthetic profiles only.
        device: ``cuda``, ``mps``, ``cpu``, or ``None``/``"auto"`` for the best available.
        image_size: model input side in pixels (a multiple of 32; 1024 as released).
        base: checkpoint download base URL (see :func:`~aerialsam.models.checkpoints.base_url`).

    Raises:
        InputError: a bad variant, image size or device.
        CheckpointError: no checkpoint, or one that is corrupt or of another variant.
    """
    get_variant(variant)
    check_image_size(image_size)
    target = pick_device(device or "auto")
    if checkpoint == RANDOM:
        log.warning("SAM 2.1 %s with RANDOM, UNTRAINED weights: its masks are meaningless; "
                    "use a real checkpoint for any result that matters", variant)
        model = random_sam2(variant, image_size)
    else:
        path = resolve_checkpoint(variant, checkpoint, base=base)
        state = read_checkpoint(path)
        model = random_sam2(variant, image_size)
        check_state_dict(model, state, variant, path)
        model.load_state_dict(state, strict=True)
        log.info("loaded SAM 2.1 %s from %s (image size %d)", variant, path, image_size)
    return model.to(target).eval()


def save_random_checkpoint(variant: str, path: str | Path, image_size: int = 1024,
                           seed: int = 0) -> Path:
    """Save a randomly initialised model in the official ``{"model": state_dict}`` format.

    For tests and the synthetic profiles: the result loads like a downloaded checkpoint.
    """
    model = random_sam2(variant, image_size, seed)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict()}, tmp)
    return path


def feature_sizes(image_size: int) -> list[tuple[int, int]]:
    """The (rows, cols) of SAM 2's three backbone feature maps for a square input side."""
    return [(image_size // s, image_size // s) for s in BACKBONE_STRIDES]


def fit_feature_sizes(predictor: SAM2ImagePredictor) -> SAM2ImagePredictor:
    """Set a predictor's backbone feature sizes (hard-coded for 1024 px) to its model's size.

    Also fixes the predictor inside ``SAM2AutomaticMaskGenerator`` (its ``.predictor``).
    """
    predictor._bb_feat_sizes = feature_sizes(predictor.model.image_size)
    return predictor


def make_predictor(model: SAM2Base, **kwargs: object) -> SAM2ImagePredictor:
    """A ``SAM2ImagePredictor`` that works at the model's image size (any, not only 1024).

    Args:
        model: a model from :func:`load_sam2`.
        **kwargs: passed to ``SAM2ImagePredictor`` (``mask_threshold``, ``max_hole_area``, …).
    """
    with warnings.catch_warnings():
        # sam2's transforms call torch.jit.script, which this torch deprecates: not ours to fix.
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        predictor = SAM2ImagePredictor(model, **kwargs)
    return fit_feature_sizes(predictor)


def compile_encoder(model: SAM2Base, backend: str = "inductor") -> SAM2Base:
    """``model`` with its image encoder compiled by ``torch.compile`` (in place).

    The encoder is most of SAM 2's work per chip, and its shapes are fixed by the input size
    and the batch: one compilation serves a whole prediction (a smaller last batch compiles
    once more). The first call pays the warm-up, a minute or more on a GPU; worth it for many
    tiles, not for a few. ``backend="eager"`` runs the same code path without compiling.
    """
    model.image_encoder = torch.compile(model.image_encoder, backend=backend, dynamic=False)
    return model
