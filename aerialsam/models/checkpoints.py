"""Where SAM 2.1 checkpoints come from: an explicit file, the cache, or Meta's server.

A checkpoint is found, in order: an explicit path; the official file name in the cache
directory (``$AERIALSAM_CACHE``, default ``~/.cache/aerialsam``); a download from Meta's
server (``$AERIALSAM_SAM2_URL`` overrides the base URL) into that cache. Downloads go through
the same client as the SpaceNet data (:class:`aerialsam.data.s3.BucketClient`): retried with
back-off, resumed with HTTP Range after a dropped connection or an interrupted run (the bytes
so far wait in ``.<name>.part`` beside the cache file), and renamed to the final name only
when every announced byte has arrived.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import warnings
import zipfile
from pathlib import Path

import torch
from tqdm.auto import tqdm

from aerialsam.data.s3 import BucketClient, DownloadError, RetryPolicy
from aerialsam.errors import InputError
from aerialsam.models.variants import get_variant

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"
URL_ENV = "AERIALSAM_SAM2_URL"
CACHE_ENV = "AERIALSAM_CACHE"
DEFAULT_CACHE = Path("~/.cache/aerialsam")
DEFAULT_RETRY = RetryPolicy()
"""Retries of a checkpoint download: as for the SpaceNet data (5 tries, back-off from 1 s)."""
LOAD_ERRORS: tuple[type[Exception], ...] = (
    pickle.UnpicklingError, zipfile.BadZipFile, struct.error, RuntimeError, EOFError,
    ValueError, OSError, AssertionError, IndexError, KeyError, TypeError, AttributeError)
"""What ``torch.load`` raises on a damaged file: a truncated or garbled zip archive, pickle
or tensor record surfaces as any of these, depending on where the damage lies."""
CORRUPT_REMEDY = "delete it and download it again, or pass another checkpoint"
"""What to do about a damaged official checkpoint (most often an interrupted download)."""


class CheckpointError(InputError):
    """A SAM 2 checkpoint that cannot be found, downloaded, read or matched to its variant."""


def cache_dir() -> Path:
    """The checkpoint cache: ``$AERIALSAM_CACHE``, else ``~/.cache/aerialsam``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def base_url(override: str | None = None) -> str:
    """The download base URL: ``override``, else ``$AERIALSAM_SAM2_URL``, else Meta's."""
    return (override or os.environ.get(URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def checkpoint_url(variant: str, base: str | None = None) -> str:
    """The download URL of a variant's official checkpoint (see :func:`base_url`)."""
    return f"{base_url(base)}/{get_variant(variant).filename}"


def resolve_checkpoint(variant: str, checkpoint: str | Path | None = None,
                       base: str | None = None, retry: RetryPolicy | None = None) -> Path:
    """Find a variant's checkpoint file: explicit path, else cache, else download to the cache.

    Args:
        variant: the SAM 2.1 variant.
        checkpoint: an explicit file, or ``None`` to use the cache.
        base: download base URL (see :func:`base_url`).
        retry: how often and how patiently to retry (default :class:`RetryPolicy`).

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
    return download_checkpoint(variant, cached, base=base, retry=retry)


def partial_path(dest: Path) -> Path:
    """Where the bytes of an unfinished download of ``dest`` wait for the next try."""
    return dest.with_name(f".{dest.name}.part")


def download_checkpoint(variant: str, dest: str | Path, base: str | None = None,
                        retry: RetryPolicy | None = None) -> Path:
    """Download a variant's official checkpoint to ``dest``, resumably and size-checked.

    The file appears at ``dest`` only once every byte the server announced has arrived; an
    interrupted download leaves its bytes in :func:`partial_path` and the next call resumes.

    Raises:
        CheckpointError: no connection, an HTTP error or retries spent; the message says which
            file to place where to work offline.
    """
    dest = Path(dest)
    filename = get_variant(variant).filename
    client = BucketClient(base_url(base), retry or DEFAULT_RETRY)
    part = partial_path(dest)
    log.info("downloading %s to %s", client.url(filename), dest)
    try:
        size = client.head(filename).size
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tqdm(total=size, initial=part.stat().st_size if part.exists() else 0, unit="B",
                  unit_scale=True, desc=filename, disable=None) as bar:
            client.fetch_resumable(filename, part, size, progress=bar.update)
    except DownloadError as exc:
        raise CheckpointError(dest, f"cannot download {client.url(filename)} ({exc}); offline, "
                                    f"download {filename} elsewhere and place it at {dest}, "
                                    "or pass an explicit checkpoint path") from None
    part.replace(dest)
    return dest


def load_torch_file(path: str | Path, remedy: str = CORRUPT_REMEDY) -> object:
    """What a PyTorch file holds, loaded on the CPU with ``weights_only=True``.

    The weights-only unpickler accepts tensors and plain containers only, so a file that
    would run code when loaded (a crafted pickle) is refused rather than executed.

    Args:
        path: the file.
        remedy: what the user should do about a damaged file, for the message.

    Raises:
        CheckpointError: the file is missing, unreadable, truncated, corrupt, or holds
            objects whose loading would run code; one line naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "checkpoint file not found")
    try:
        with warnings.catch_warnings():
            # e.g. "Detected pickle protocol 4": noise before the error that says it all
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(path, f"not a readable PyTorch checkpoint ({_refusal(exc)}); the "
                                    "file is corrupt or truncated, or holds Python objects "
                                    f"whose loading would run code (refused): {remedy}"
                              ) from None
    except LOAD_ERRORS as exc:
        raise CheckpointError(path, f"not a readable PyTorch checkpoint ({_first_line(exc)}); "
                                    f"the file is probably corrupt or truncated: {remedy}"
                              ) from None


def _first_line(exc: BaseException) -> str:
    """The first sentence of an exception's message (torch's go on with generic advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[0].split(". ")[0] if lines else type(exc).__name__)[:120]


def _refusal(exc: pickle.UnpicklingError) -> str:
    """The line of the weights-only unpickler's message that says what it refused.

    Its first lines are generic advice (about ``weights_only=False``, which would run the
    code); the specific line names the refused global or opcode.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    specific = [line for line in lines if "global" in line.lower() or "unsupported" in
                line.lower() or "operand" in line.lower()]
    return (specific[0] if specific else "refused by the weights-only unpickler")[:120]


def read_checkpoint(path: str | Path, remedy: str = CORRUPT_REMEDY) -> dict[str, torch.Tensor]:
    """The state dict of an official-format checkpoint (``{"model": state_dict}``), on CPU.

    Loaded with ``weights_only=True`` (:func:`load_torch_file`): a checkpoint cannot run code.

    Args:
        path: the checkpoint.
        remedy: what the user should do about a damaged file, for the message.

    Raises:
        CheckpointError: not a readable PyTorch file, or no ``"model"`` state dict in it.
    """
    path = Path(path)
    payload = load_torch_file(path, remedy)
    state = payload.get("model") if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise CheckpointError(path, "no 'model' state dict in the file; expected the official "
                                    "SAM 2 format {'model': state_dict}")
    return state
