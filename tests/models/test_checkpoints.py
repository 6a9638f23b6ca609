"""Checkpoint resolution: explicit file, cache, resumable download, unreadable files.

Downloads go to a local HTTP server on 127.0.0.1, never to the internet; checkpoints are
saved by the tests themselves in the official format.
"""

from __future__ import annotations

import http.server
import os
import random
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest
import torch

from aerialsam.errors import InputError
from aerialsam.models import checkpoints
from aerialsam.models import sam2 as sam2_model
from tests.models.weights import assert_weights

SIZE = 256


Serve = Callable[..., str]


class _LyingHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files but announces 1000 bytes more than it sends (a cut-off transfer)."""

    def send_header(self, keyword: str, value: str) -> None:
        if keyword == "Content-Length":
            value = str(int(value) + 1000)
        super().send_header(keyword, value)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    """Start an HTTP server on 127.0.0.1 over a folder; yield a function returning its URL."""
    servers = []

    def start(folder: Path, handler: type = http.server.SimpleHTTPRequestHandler) -> str:
        quiet = type("Quiet", (handler,), {"log_message": lambda *a: None})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                 partial(quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_cache_dir_round_trip(tiny_ckpt: Path, tiny_state: dict, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "my-cache"
    cache.mkdir()
    (cache / "sam2.1_hiera_tiny.pt").symlink_to(tiny_ckpt)
    monkeypatch.setenv(checkpoints.CACHE_ENV, str(cache))
    # A refusing URL proves the cached file is used without any download attempt.
    monkeypatch.setenv(checkpoints.URL_ENV, _closed_port_url())
    assert checkpoints.resolve_checkpoint("tiny") == cache / "sam2.1_hiera_tiny.pt"
    assert_weights(sam2_model.load_sam2("tiny", device="cpu", image_size=SIZE), tiny_state)


def test_download_round_trip(tiny_ckpt: Path, tiny_state: dict, tmp_path: Path,
                             serve: Serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(checkpoints.URL_ENV, serve(tiny_ckpt.parent) + "/")
    model = sam2_model.load_sam2("tiny", device="cpu", image_size=SIZE)
    cached = tmp_path / "cache" / "sam2.1_hiera_tiny.pt"
    assert cached.read_bytes() == tiny_ckpt.read_bytes()
    assert sorted(p.name for p in cached.parent.iterdir()) == ["sam2.1_hiera_tiny.pt"]
    assert_weights(model, tiny_state)


def test_download_base_url_argument(tiny_ckpt: Path, tmp_path: Path, serve: Serve) -> None:
    dest = tmp_path / "elsewhere" / "t.pt"
    checkpoints.download_checkpoint("tiny", dest, base=serve(tiny_ckpt.parent))
    assert dest.read_bytes() == tiny_ckpt.read_bytes()


def test_refused_download_says_where_to_put_the_file(tmp_path: Path) -> None:
    with pytest.raises(checkpoints.CheckpointError) as info:
        sam2_model.load_sam2("tiny", device="cpu", image_size=SIZE, base=_closed_port_url())
    message = str(info.value)
    cached = tmp_path / "cache" / "sam2.1_hiera_tiny.pt"
    assert str(cached) in message and "sam2.1_hiera_tiny.pt" in message
    assert "refused" in message.lower()
    assert isinstance(info.value, InputError)
    assert not cached.parent.exists() or not any(cached.parent.iterdir())


def test_missing_file_on_server(tmp_path: Path, serve: Serve) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(checkpoints.CheckpointError, match="HTTP 404"):
        checkpoints.resolve_checkpoint("small", base=serve(empty))


def test_short_download_keeps_only_a_partial_file(tiny_ckpt: Path, tmp_path: Path,
                                                  serve: Serve) -> None:
    size = tiny_ckpt.stat().st_size
    with pytest.raises(checkpoints.CheckpointError,
                       match=rf"connection closed at byte {size} of {size + 1000}"):
        checkpoints.resolve_checkpoint("tiny", base=serve(tiny_ckpt.parent, _LyingHandler))
    # nothing at the final name; the bytes so far wait for the next try to resume
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".sam2.1_hiera_tiny.pt.part"]


def test_download_completes_a_partial_file(tiny_ckpt: Path, tmp_path: Path,
                                           serve: Serve) -> None:
    dest = tmp_path / "cache" / "sam2.1_hiera_tiny.pt"
    dest.parent.mkdir()
    checkpoints.partial_path(dest).write_bytes(tiny_ckpt.read_bytes()[:1000])
    assert checkpoints.resolve_checkpoint("tiny", base=serve(tiny_ckpt.parent)) == dest
    assert dest.read_bytes() == tiny_ckpt.read_bytes()
    assert not checkpoints.partial_path(dest).exists()


def test_explicit_path_not_found(tmp_path: Path) -> None:
    with pytest.raises(checkpoints.CheckpointError, match="checkpoint file not found"):
        sam2_model.load_sam2("tiny", tmp_path / "nope.pt", device="cpu", image_size=SIZE)


@pytest.mark.parametrize("content", [b"", b"<html>404 page saved as .pt</html>\n"])
def test_corrupt_checkpoint(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    path.write_bytes(content)
    with pytest.raises(checkpoints.CheckpointError) as info:
        sam2_model.load_sam2("tiny", path, device="cpu", image_size=SIZE)
    assert str(info.value).startswith(f"{path}: not a readable PyTorch checkpoint")
    assert "corrupt or truncated" in str(info.value)


def test_truncated_checkpoint(tiny_ckpt: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.pt"
    path.write_bytes(tiny_ckpt.read_bytes()[:100_000])
    with pytest.raises(checkpoints.CheckpointError, match="corrupt or truncated"):
        checkpoints.read_checkpoint(path)


def test_checkpoint_without_model_entry(tiny_state: dict, tmp_path: Path) -> None:
    path = tmp_path / "bare.pt"
    torch.save(tiny_state, path)  # a bare state dict, not {"model": ...}
    with pytest.raises(checkpoints.CheckpointError, match="no 'model' state dict"):
        checkpoints.read_checkpoint(path)


class _RunsCode:
    """Pickles as a call of ``os.mkdir``: an unsafe load would make ``self.marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_checkpoint_that_would_run_code_is_refused_unrun(tmp_path: Path) -> None:
    marker = tmp_path / "the_pickle_ran"
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": _RunsCode(marker)}, path)
    with pytest.raises(checkpoints.CheckpointError) as info:
        checkpoints.read_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a readable PyTorch checkpoint (Trying to load "
                              "unsupported GLOBAL posix.mkdir")
    assert "would run code (refused)" in message and len(message.splitlines()) == 1
    assert not marker.exists()


def test_damaged_checkpoints_are_checkpoint_errors_never_other_exceptions(
        tmp_path: Path) -> None:
    """Cut short anywhere or with bytes changed anywhere, a checkpoint loads or is refused
    with a one-line CheckpointError: whatever torch.load raises inside is caught."""
    good = tmp_path / "good.pt"
    torch.save({"model": {"w": torch.randn(20, 20), "b": torch.randn(5)}}, good)
    data = good.read_bytes()
    rng = random.Random(0)
    path = tmp_path / "damaged.pt"
    refused = 0
    for trial in range(300):
        if trial < 150:
            content = data[:rng.randrange(len(data))]
        else:
            changed = bytearray(data)
            for _ in range(rng.randint(1, 4)):
                changed[rng.randrange(len(changed))] = rng.randrange(256)
            content = bytes(changed)
        path.write_bytes(content)
        try:
            checkpoints.read_checkpoint(path)
        except checkpoints.CheckpointError as exc:
            assert str(exc).startswith(f"{path}: ") and len(str(exc).splitlines()) == 1
            refused += 1
    assert refused >= 150  # every cut file at least

