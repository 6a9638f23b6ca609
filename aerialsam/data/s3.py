"""Anonymous HTTP(S) access to a public S3 bucket with only the standard library.

A :class:`BucketClient` talks to a bucket's base URL (``https://spacenet-dataset.s3.amazonaws.com``,
or any server with the same key layout: a mirror, MinIO, a test server) with three calls:
``HEAD`` (size, ETag), ``ListObjectsV2`` (``GET /?list-type=2&prefix=…``, following
continuation tokens) and ``GET`` with an optional ``Range`` header. No credentials and no AWS
tooling are needed because the bucket is public.

Failures are sorted in two: connection errors, truncated bodies and HTTP 5xx/429 are retried
with exponential backoff (:class:`RetryPolicy`), each retry logged at INFO (shown with ``-v``)
so that a download that fails in the end is one line; 403, 404 and other 4xx fail at once with
a :class:`DownloadError` that names the key. A write that fails (a full disk) is no connection
trouble: it fails at once with an :class:`~aerialsam.io.OutputError` naming the file.

Bytes whose md5 disagrees with a checksum we trust are never kept. The checksums trusted are
the manifest's md5 (tarballs) and the ETag of a single-part upload, which S3 makes the md5 of
the object; a multipart upload's ETag ends in ``-N`` and is no md5, so such an object is checked
by its length only. (The objects whose single-part ETag is not their md5, encrypted with KMS
or a customer key, cannot be read anonymously, so this client never meets one.)
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TypeVar

from aerialsam.errors import AerialSamError, InputError
from aerialsam.io import atomic_path, output_error

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")
SCHEMES = ("http", "https")
T = TypeVar("T")


class DownloadError(AerialSamError):
    """A download that cannot succeed: missing or forbidden key, bad checksum, retries spent."""


class _Transient(Exception):
    """A failure worth retrying (connection trouble, a truncated body, a 5xx answer)."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures.

    Attributes:
        attempts: tries per request before giving up (consecutive failures without progress).
        backoff_s: the first wait; it doubles after each failure.
        max_backoff_s: the longest wait.
        timeout_s: socket timeout of one request.
    """

    attempts: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    timeout_s: float = 60.0

    def delay(self, failure: int) -> float:
        """Seconds to wait after the ``failure``-th consecutive failure (1-based)."""
        return min(self.backoff_s * 2 ** (failure - 1), self.max_backoff_s)


def check_endpoint(endpoint: str, source: str | None = None) -> str:
    """Refuse a bucket URL that is not ``http(s)://host…``, before any request is made.

    ``urllib`` would also open ``ftp://`` and ``file://`` URLs, and fail only after every retry.

    Args:
        endpoint: the bucket's base URL.
        source: what to name in the error (default: the URL itself), e.g. ``--endpoint``.

    Raises:
        InputError: the URL's scheme is not http or https, or it has no host.
    """
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme.lower() not in SCHEMES or not parts.netloc:
        shown = f"{endpoint!r} is" if source else "is"
        raise InputError(source or endpoint, f"{shown} not an http:// or https:// URL of a "
                                             "bucket (e.g. https://spacenet-dataset.s3"
                                             ".amazonaws.com)")
    return endpoint


@dataclass(frozen=True)
class ObjectInfo:
    """An object's key, size in bytes and md5 (from a single-part ETag; ``None`` for multipart)."""

    key: str
    size: int
    md5: str | None


class BucketClient:
    """Anonymous client of one public bucket, addressed by its base URL."""

    def __init__(self, endpoint: str, retry: RetryPolicy | None = None) -> None:
        """A client of the bucket at ``endpoint``.

        Args:
            endpoint: the bucket's base URL; object ``k`` is at ``{endpoint}/{k}``.
            retry: retry policy (default :class:`RetryPolicy`).

        Raises:
            InputError: ``endpoint`` is not an http(s) URL.
        """
        self.endpoint = check_endpoint(endpoint).rstrip("/")
        self.retry = retry or RetryPolicy()

    def url(self, key: str) -> str:
        """The URL of object ``key``."""
        return f"{self.endpoint}/{urllib.parse.quote(key)}"

    def head(self, key: str) -> ObjectInfo:
        """Size and md5 of one object.

        Raises:
            DownloadError: the key is missing or forbidden, or retries are spent.
        """
        def attempt() -> ObjectInfo:
            with self._open(key, method="HEAD") as response:
                return _info(key, response)
        return self._retrying(attempt, key)

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (ListObjectsV2, all pages).

        Raises:
            DownloadError: the listing is refused or unreadable, or retries are spent.
        """
        objects: list[ObjectInfo] = []
        token: str | None = None
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            url = f"{self.endpoint}/?{urllib.parse.urlencode(query)}"
            page = self._retrying(lambda u=url: self._read_url(u, prefix), prefix)
            found, token = _parse_listing(page, prefix)
            objects.extend(found)
            if not token:
                return objects

    def fetch(self, key: str, path: Path) -> ObjectInfo:
        """Download a (small) object to ``path`` atomically, checking its length and md5.

        The md5 is the ETag's when it is a single-part one (see the module). Bytes that
        disagree with it are never kept: they are fetched again, and the download fails when
        the same wrong bytes arrive twice or the retries are spent.

        Raises:
            DownloadError: missing or forbidden key, md5 mismatch, or retries spent.
            OutputError: ``path`` cannot be written (a full disk, say).
        """
        seen: set[str] = set()

        def attempt() -> ObjectInfo:
            with atomic_path(path) as tmp, self._open(key) as response:
                info = _info(key, response)
                with tmp.open("wb") as out:
                    digest, written = _copy(response, out, hashlib.md5())
                _check_complete(key, written, info.size)
                _check_etag_md5(key, digest.hexdigest(), info.md5, seen)
            return info
        return self._retrying(attempt, key)

    def fetch_resumable(self, key: str, part: Path, size: int,
                        progress: Callable[[int], object] | None = None) -> str:
        """Append the rest of object ``key`` to ``part`` with HTTP Range; return the file's md5.

        ``part`` may hold a prefix from an earlier, interrupted run: its bytes are hashed,
        then the download resumes after them. A dropped connection resumes from the bytes on
        disk; only consecutive failures without progress count against the retry budget.

        Raises:
            DownloadError: missing or forbidden key, or retries spent.
        """
        state = _Partial(part)
        state.hash_existing(size, progress)
        failures = 0
        while state.have < size:
            before = state.have
            try:
                self._append_range(key, state, progress)
                _check_complete(key, state.have, size)
            except _Transient as exc:
                failures = 0 if state.have > before else failures + 1
                if failures >= self.retry.attempts:
                    raise DownloadError(f"{key}: giving up after {failures} failed tries "
                                        f"({exc})") from None
                # a retry is progress news (shown with -v); only giving up is the error line
                log.info("%s: %s; resuming at byte %d", key, exc, state.have)
                time.sleep(self.retry.delay(max(failures, 1)))
        return state.digest.hexdigest()

    def _append_range(self, key: str, state: _Partial,
                      progress: Callable[[int], object] | None) -> None:
        """One ranged GET from the end of the partial file, appended to it.

        Raises:
            OutputError: the partial file cannot be written (a full disk); the bytes already
                in it stay, and a rerun resumes after them.
        """
        with self._open(key, start=state.have) as response:
            if state.have and response.status != 206:
                # The server ignored Range and sends the whole object: start over.
                log.warning("%s: server ignored the Range header; restarting", key)
                state.restart()
            try:
                with state.path.open("ab") as out:
                    _copy(response, out, state.digest, progress)
            except OSError as exc:
                resumes = f"the download resumes after the {state.have} bytes kept"
                raise output_error(state.path, exc, resumes) from None

    def _read_url(self, url: str, what: str) -> bytes:
        with self._open_url(url, what, "GET", None) as response:
            try:
                return response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"connection dropped ({exc})") from None

    def _open(self, key: str, method: str = "GET",
              start: int | None = None) -> http.client.HTTPResponse:
        return self._open_url(self.url(key), key, method, start)

    def _open_url(self, url: str, what: str, method: str,
                  start: int | None) -> http.client.HTTPResponse:
        headers = {"User-Agent": "aerialsam"}
        if start:
            headers["Range"] = f"bytes={start}-"
        request = urllib.request.Request(url, method=method, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=self.retry.timeout_s)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code >= 500 or exc.code == 429:
                raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
            hint = {403: " (forbidden: is the key right and the bucket public?)",
                    404: " (no such key: check the manifest and --endpoint)"}.get(exc.code, "")
            raise DownloadError(f"{what}: HTTP {exc.code} {exc.reason} from {url}{hint}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            raise _Transient(f"connection error: {getattr(exc, 'reason', exc)}") from None

    def _retrying(self, attempt: Callable[[], T], what: str) -> T:
        for failure in range(1, self.retry.attempts + 1):
            try:
                return attempt()
            except _Transient as exc:
                if failure == self.retry.attempts:
                    raise DownloadError(f"{what}: giving up after {failure} tries "
                                        f"({exc})") from None
                # a retry is progress news (shown with -v): a failure stays one line
                log.info("%s: %s; retry %d of %d", what, exc, failure, self.retry.attempts - 1)
                time.sleep(self.retry.delay(failure))
        raise AssertionError("unreachable")


def _info(key: str, response: http.client.HTTPResponse) -> ObjectInfo:
    length = response.headers.get("Content-Length")
    if length is None:
        raise DownloadError(f"{key}: the server sent no Content-Length")
    return ObjectInfo(key, int(length), _etag_md5(response.headers.get("ETag")))


def _etag_md5(etag: str | None) -> str | None:
    """The md5 an ETag is: a single-part upload's; ``None`` for a multipart ``…-N`` one."""
    plain = (etag or "").strip().removeprefix("W/").strip('"').lower()
    return plain if _PLAIN_MD5.match(plain) else None


def _check_etag_md5(key: str, actual: str, etag_md5: str | None, seen: set[str]) -> None:
    """Refuse bytes whose md5 is not the ETag's: retry once, fail when they come back."""
    if etag_md5 is None or actual == etag_md5:
        return
    if actual in seen:
        raise DownloadError(f"{key}: the same bytes arrived twice, md5 {actual}, but the ETag "
                            f"(the md5 of a single-part upload) is {etag_md5}; they were not "
                            "kept")
    seen.add(actual)
    raise _Transient(f"md5 {actual} differs from the ETag md5 {etag_md5}")


def _copy(response: BinaryIO, out: BinaryIO, digest: hashlib._Hash,
          progress: Callable[[int], object] | None = None) -> tuple[hashlib._Hash, int]:
    """Copy the body to ``out``, hashing it.

    A failed read is the connection's (transient); a failed write is the disk's: its
    ``OSError`` propagates, for the caller to name the file.
    """
    written = 0
    while True:
        try:
            chunk = response.read(CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            raise _Transient(f"connection dropped after {written} bytes ({exc})") from None
        if not chunk:
            return digest, written
        out.write(chunk)
        digest.update(chunk)
        written += len(chunk)
        if progress:
            progress(len(chunk))


def _check_complete(key: str, have: int, size: int) -> None:
    if have < size:
        raise _Transient(f"connection closed at byte {have} of {size}")
    if have > size:
        raise DownloadError(f"{key}: received {have} bytes, expected {size}; "
                            "the object changed on the server")


class _Partial:
    """A partial download on disk and the md5 of exactly the bytes it holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digest = hashlib.md5()

    @property
    def have(self) -> int:
        """Bytes on disk (the truth after any failure, whatever was received)."""
        return self.path.stat().st_size if self.path.exists() else 0

    def restart(self) -> None:
        """Forget the partial file and its hash."""
        self.path.unlink(missing_ok=True)
        self.digest = hashlib.md5()

    def hash_existing(self, size: int, progress: Callable[[int], object] | None) -> None:
        """Hash what an earlier run left; drop it when it is longer than the object."""
        if self.have > size:
            log.warning("%s: partial file is longer than the object; starting over", self.path)
            self.restart()
        if not self.path.exists():
            return
        with self.path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                self.digest.update(chunk)
                if progress:
                    progress(len(chunk))


def _parse_listing(page: bytes, prefix: str) -> tuple[list[ObjectInfo], str | None]:
    """Objects and the next continuation token (``None`` on the last page) of one page."""
    try:
        root = ElementTree.fromstring(page)
    except ElementTree.ParseError as exc:
        raise DownloadError(f"{prefix}: unreadable ListObjectsV2 answer ({exc})") from None
    objects = []
    for item in _children(root, "Contents"):
        objects.append(ObjectInfo(_text(item, "Key"), int(_text(item, "Size") or 0),
                                  _etag_md5(_text(item, "ETag"))))
    truncated = _text(root, "IsTruncated").lower() == "true"
    token = _text(root, "NextContinuationToken") if truncated else ""
    if truncated and not token:
        raise DownloadError(f"{prefix}: truncated listing without a NextContinuationToken")
    return objects, token or None


def _children(element: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    # S3 answers in its XML namespace; mirrors may not: compare local names only.
    return (child for child in element if child.tag.rsplit("}", 1)[-1] == name)


def _text(element: ElementTree.Element, name: str) -> str:
    child = next(_children(element, name), None)
    return (child.text or "").strip() if child is not None else ""
