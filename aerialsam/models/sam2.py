"""Build and load SAM 2.1 (tiny, small, base_plus, large), with checkpoint resolution.

A checkpoint is found, in order: an explicit path; the official file name in the cache
directory (``$AERIALSAM_CACHE``, default ``~/.cache/aerialsam``); a download from Meta's
server (``$AERIALSAM_SAM2_URL`` overrides the base URL) into that cache. ``"random"`` builds
an untrained model, for the synthetic ``smoke``/``demo`` profiles only, and says so loudly.

The model may be built at a reduced ``image_size`` (256 or 512 for CPU work): every size in
SAM 2's model code derives from ``model.image_size`` except the image predictor's backbone
feature sizes, hard-coded for 1024 px, which :func:`make_predictor` sets right. The weights do
not depend on the input size, so official 1024-px checkpoints load at any size.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import pickle
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from sam2.build_sam import build_sam2
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor
from tqdm.auto import tqdm

from aerialsam.errors import InputError
from aerialsam.io import atomic_path
from aerialsam.models.variants import RANDOM, check_image_size

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"
URL_ENV = "AERIALSAM_SAM2_URL"
CACHE_ENV = "AERIALSAM_CACHE"
DEFAULT_CACHE = Path("~/.cache/aerialsam")
BACKBONE_STRIDES = (4, 8, 16)
"""Strides of the three backbone feature maps the mask decoder uses (high-res to embedding)."""
_CHUNK = 1 << 20
# Keys SAM 2.1 added to SAM 2.0: a 2.0 checkpoint lacks exactly these.
_SAM21_ONLY_KEYS = frozenset({"no_obj_embed_spatial", "obj_ptr_tpos_proj.weight",
                              "obj_ptr_tpos_proj.bias"})
_PATCH_KEY = "image_encoder.trunk.patch_embed.proj.weight"
_BLOCKS_PREFIX = "image_encoder.trunk.blocks."


@dataclass(frozen=True)
class Variant:
    """One SAM 2.1 model size.

    Attributes:
        name: ``tiny``, ``small``, ``base_plus`` or ``large``.
        config: the config name packaged with ``sam2`` (a Hydra name, not a file path).
        embed_dim: channels of the Hiera patch embedding (tells variants apart in a file).
        blocks: number of Hiera blocks (tells tiny from small, which share ``embed_dim``).
    """

    name: str
    config: str
    embed_dim: int
    blocks: int

    @property
    def filename(self) -> str:
        """The official checkpoint file name, e.g. ``sam2.1_hiera_tiny.pt``."""
        return f"sam2.1_hiera_{self.name}.pt"


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("tiny", "configs/sam2.1/sam2.1_hiera_t.yaml", 96, 12),
    Variant("small", "configs/sam2.1/sam2.1_hiera_s.yaml", 96, 16),
    Variant("base_plus", "configs/sam2.1/sam2.1_hiera_b+.yaml", 112, 24),
    Variant("large", "configs/sam2.1/sam2.1_hiera_l.yaml", 144, 48),
)}


class CheckpointError(InputError):
    """A SAM 2 checkpoint that cannot be found, downloaded, read or matched to its variant."""


class _IncompleteDownload(OSError):
    """The server sent fewer (or more) bytes than its Content-Length announced."""


def get_variant(name: str) -> Variant:
    """The :class:`Variant` called ``name``.

    Raises:
        InputError: an unknown variant name.
    """
    if name not in VARIANTS:
        raise InputError("--variant", f"unknown SAM 2 variant {name!r}; "
                                      f"choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]


def cache_dir() -> Path:
    """The checkpoint cache: ``$AERIALSAM_CACHE``, else ``~/.cache/aerialsam``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def checkpoint_url(variant: str, base_url: str | None = None) -> str:
    """The download URL of a variant: ``base_url``, else ``$AERIALSAM_SAM2_URL``, else Meta's."""
    base = base_url or os.environ.get(URL_ENV) or DEFAULT_BASE_URL
    return f"{base.rstrip('/')}/{get_variant(variant).filename}"


def resolve_checkpoint(variant: str, checkpoint: str | Path | None = None,
                       base_url: str | None = None, timeout: float = 60.0) -> Path:
    """Find a variant's checkpoint file: explicit path, else cache, else download to the cache.

    Args:
        variant: the SAM 2.1 variant.
        checkpoint: an explicit file, or ``None`` to use the cache.
        base_url: download base URL (see :func:`checkpoint_url`).
        timeout: seconds to wait on the server before giving up.

    Raises:
        CheckpointError: an explicit file that does not exist, or a failed download.
    """
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise CheckpointError(path, "checkpoint file not found")
        return path
    cached = cache_dir() / get_variant(variant).filename
    if cached.is_file():
        log.info("SAM 2.1 %s checkpoint from the cache: %s", variant, cached)
        return cached
    return download_checkpoint(variant, cached, base_url=base_url, timeout=timeout)


def download_checkpoint(variant: str, dest: str | Path, base_url: str | None = None,
                        timeout: float = 60.0) -> Path:
    """Download a variant's official checkpoint to ``dest``, atomically and size-checked.

    The file appears at ``dest`` only once every byte the server announced has arrived.

    Raises:
        CheckpointError: no connection, an HTTP error or a short transfer; the message says
            which file to place where to work offline.
    """
    dest = Path(dest)
    url = checkpoint_url(variant, base_url)
    log.info("downloading %s to %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, atomic_path(dest) as tmp:
            _copy_checked(response, tmp, url)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        reason = (f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError)
                  else getattr(exc, "reason", None) or exc)
        raise CheckpointError(dest, f"cannot download {url} ({reason}); offline, download "
                                    f"{get_variant(variant).filename} elsewhere and place it "
                                    f"at {dest}, or pass an explicit checkpoint path") from None
    return dest


def _copy_checked(response: http.client.HTTPResponse, path: Path, url: str) -> None:
    """Stream ``response`` into ``path``; refuse a transfer shorter or longer than announced."""
    length = response.headers.get("Content-Length")
    expected = int(length) if length is not None else None
    if expected is None:
        log.warning("%s sent no Content-Length: the download cannot be size-checked", url)
    received = 0
    with path.open("wb") as out, tqdm(total=expected, unit="B", unit_scale=True,
                                      desc=url.rsplit("/", 1)[-1], disable=None) as bar:
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    if expected is not None and received != expected:
        raise _IncompleteDownload(f"received {received} of {expected} bytes")


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict of an official-format checkpoint (``{"model": state_dict}``), on CPU.

    Loaded with ``weights_only=True``: a checkpoint cannot run code.

    Raises:
        CheckpointError: not a readable PyTorch file, or no ``"model"`` state dict in it.
    """
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(path, f"not a readable PyTorch checkpoint ({first[:120]}); the "
                                    "file is probably corrupt or truncated: delete it and "
                                    "download it again") from None
    state = payload.get("model") if isinstance(payload, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(path, "no 'model' state dict in the file; expected the official "
                                    "SAM 2 format {'model': state_dict}")
    return state


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


def build_model(variant: str = "tiny", image_size: int = 1024, seed: int = 0) -> SAM2Base:
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
              base_url: str | None = None) -> SAM2Base:
    """A SAM 2.1 model with its weights, on ``device``, in eval mode.

    Args:
        variant: ``tiny``, ``small``, ``base_plus`` or ``large``.
        checkpoint: a file path; ``None`` to use the cache (downloading if needed); or
            ``"random"`` for untrained weights (seed 0), for synthetic profiles only.
        device: ``cuda``, ``mps``, ``cpu``, or ``None``/``"auto"`` for the best available.
        image_size: model input side in pixels (a multiple of 32; 1024 as released).
        base_url: checkpoint download base URL (see :func:`checkpoint_url`).

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
        model = build_model(variant, image_size)
    else:
        path = resolve_checkpoint(variant, checkpoint, base_url=base_url)
        state = read_checkpoint(path)
        model = build_model(variant, image_size)
        check_state_dict(model, state, variant, path)
        model.load_state_dict(state, strict=True)
        log.info("loaded SAM 2.1 %s from %s (image size %d)", variant, path, image_size)
    return model.to(target).eval()


def save_random_checkpoint(variant: str, path: str | Path, image_size: int = 1024,
                           seed: int = 0) -> Path:
    """Save a randomly initialised model in the official ``{"model": state_dict}`` format.

    For tests and the synthetic profiles: the result loads like a downloaded checkpoint.
    """
    model = build_model(variant, image_size, seed)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"model": model.state_dict()}, tmp)
    return path


def pick_device(preference: str | torch.device = "auto") -> torch.device:
    """The device to run on: ``auto`` picks cuda, then mps, then cpu.

    Raises:
        InputError: a named device that is not available here.
    """
    if isinstance(preference, torch.device):
        return preference
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        device = torch.device(preference)
    except RuntimeError:
        raise InputError("--device", f"unknown device {preference!r}; use auto, cuda, mps "
                                     "or cpu") from None
    if (device.type == "cuda" and not torch.cuda.is_available()) or \
            (device.type == "mps" and not _mps_available()):
        raise InputError("--device", f"{preference!r} is not available on this machine")
    return device


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def autocast_dtype(device: str | torch.device) -> torch.dtype | None:
    """bfloat16 on a CUDA GPU that supports it; ``None`` (stay in float32) anywhere else."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: str | torch.device) -> contextlib.AbstractContextManager:
    """Mixed precision for inference on ``device`` (see :func:`autocast_dtype`), else a no-op."""
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


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
