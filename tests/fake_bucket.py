"""A fake public S3 bucket: a real HTTP server on 127.0.0.1 for the download tests and benchmark.

It answers what :class:`aerialsam.data.s3.BucketClient` asks: ``HEAD`` and ``GET`` of objects
(with ``Range``), and ``GET /?list-type=2&prefix=…`` (ListObjectsV2 XML in S3's namespace,
``page_size`` keys per page, continuation tokens). Faults are injected per key: a dropped
connection after some bytes, corrupted bytes once (or the same way on every request, or
differently on every request), 5xx answers, 403, an ETag that is no md5, a slow body.
Every request is recorded.
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


@dataclass
class Request:
    """One request the server saw."""

    method: str
    key: str
    range: str | None
    query: dict[str, str]


@dataclass
class FakeBucket:
    """Objects by key, fault injection, and the log of requests."""

    objects: dict[str, bytes] = field(default_factory=dict)
    page_size: int = 1000
    latency_s: float = 0.0
    drop_after: dict[str, int] = field(default_factory=dict)
    corrupt_once: set[str] = field(default_factory=set)
    corrupt_always: set[str] = field(default_factory=set)
    corrupt_same: set[str] = field(default_factory=set)
    fail_5xx: dict[str, int] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)
    etags: dict[str, str] = field(default_factory=dict)
    chunk_delay_s: float = 0.0
    """Pause before each 64 KiB of a body: a slow transfer that a test can interrupt."""
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._corruptions = 0

    @property
    def url(self) -> str:
        """The bucket's base URL."""
        assert self._server is not None, "start() the bucket first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeBucket:
        """Serve in a daemon thread on a free port of 127.0.0.1."""
        bucket = self

        class Handler(_Handler):
            owner = bucket

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> FakeBucket:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def gets(self, key: str) -> list[Request]:
        """The GET requests of object ``key``."""
        return [r for r in self.requests if r.method == "GET" and r.key == key]

    def listings(self) -> list[Request]:
        """The ListObjectsV2 requests."""
        return [r for r in self.requests if r.query.get("list-type") == "2"]

    def _log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _take(self, faults: dict[str, int] | set[str], key: str) -> int | bool | None:
        """Pop a one-shot fault for ``key`` (thread-safe)."""
        with self._lock:
            if isinstance(faults, set):
                if key in faults:
                    faults.discard(key)
                    return True
                return None
            return faults.pop(key, None)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """Stay quiet when a client hangs up mid-answer (a killed downloader does)."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    owner: FakeBucket

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base signature
        """Stay quiet: the tests read ``FakeBucket.requests`` instead."""

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        self._object(head=True)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._object(head=False)

    def _object(self, head: bool) -> None:
        bucket = self.owner
        parsed = urllib.parse.urlsplit(self.path)
        key = urllib.parse.unquote(parsed.path.lstrip("/"))
        query = dict(urllib.parse.parse_qsl(parsed.query))
        bucket._log(Request(self.command, key, self.headers.get("Range"), query))
        if bucket.latency_s:
            time.sleep(bucket.latency_s)
        if not key and query.get("list-type") == "2":
            return self._send(200, _listing(bucket, query), "application/xml", head=head)
        remaining_5xx = bucket._take(bucket.fail_5xx, key)
        if remaining_5xx:
            if remaining_5xx > 1:
                with bucket._lock:
                    bucket.fail_5xx[key] = remaining_5xx - 1
            return self._send(503, b"<Error><Code>SlowDown</Code></Error>", head=head)
        if key in bucket.forbidden:
            return self._send(403, b"<Error><Code>AccessDenied</Code></Error>", head=head)
        if key not in bucket.objects:
            return self._send(404, b"<Error><Code>NoSuchKey</Code></Error>", head=head)
        self._send_object(key, bucket.objects[key], head)

    def _send_object(self, key: str, data: bytes, head: bool) -> None:
        bucket = self.owner
        etag = bucket.etags.get(key) or hashlib.md5(data).hexdigest()
        start, status = 0, 200
        if self.headers.get("Range") and not head:
            start = int(self.headers["Range"].removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                return self._send(416, b"", head=head)
            status = 206
        body = data[start:]
        if not head and bucket._take(bucket.corrupt_once, key):
            body = bytes([body[0] ^ 0xFF]) + body[1:]
        elif not head and key in bucket.corrupt_always:
            # Another byte each time: no two downloads of the key agree, none matches the ETag.
            with bucket._lock:
                bucket._corruptions += 1
                index = bucket._corruptions % len(body)
            body = body[:index] + bytes([body[index] ^ 0xFF]) + body[index + 1:]
        elif not head and key in bucket.corrupt_same:
            # The same wrong byte every time: two downloads agree, and neither is the object.
            index = len(data) // 2 - start
            if 0 <= index < len(body):
                body = body[:index] + bytes([body[index] ^ 0xFF]) + body[index + 1:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if head:
            return
        cut = None if head else bucket._take(bucket.drop_after, key)
        if cut is not None:
            # Send part of the body, then hang up: a dropped connection mid-transfer.
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if not bucket.chunk_delay_s:
            self.wfile.write(body)
            return
        step = 1 << 16
        for offset in range(0, len(body), step):
            time.sleep(bucket.chunk_delay_s)
            self.wfile.write(body[offset:offset + step])

    def _send(self, status: int, body: bytes, kind: str = "application/xml",
              head: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)


def _listing(bucket: FakeBucket, query: dict[str, str]) -> bytes:
    """One ListObjectsV2 page; the continuation token is the last key of the previous page."""
    prefix = query.get("prefix", "")
    after = query.get("continuation-token", "")
    size = min(bucket.page_size, int(query.get("max-keys", 1000)))
    keys = sorted(k for k in bucket.objects if k.startswith(prefix) and k > after)
    page, truncated = keys[:size], len(keys) > size
    items = "".join(
        f"<Contents><Key>{escape(k)}</Key><Size>{len(bucket.objects[k])}</Size>"
        f"<ETag>&quot;{hashlib.md5(bucket.objects[k]).hexdigest()}&quot;</ETag></Contents>"
        for k in page)
    token = ""
    if truncated:
        token = f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>"
    return (f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{S3_NS}">'
            f"<Name>spacenet-dataset</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{size}</MaxKeys>"
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>{items}{token}"
            "</ListBucketResult>").encode()


_SPECIAL_TYPES = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE,
                  "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}


def make_tarball(files: dict[str, bytes], links: dict[str, tuple[str, str]] | None = None) -> bytes:
    """A .tar.gz in memory: regular ``files`` by name, and ``links`` name -> (kind, target)
    with kind ``sym`` or ``hard`` (links), or ``chr``, ``blk`` or ``fifo`` (special files,
    ``target`` unused)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = _SPECIAL_TYPES[kind]
            if kind in ("sym", "hard"):
                info.linkname = target
            else:
                info.devmajor, info.devminor = 1, 3  # /dev/null's numbers
            tar.addfile(info)
    return buffer.getvalue()


def tile_objects(aoi: str, numbers: list[int], image_bytes: int = 64,
                 without_label: tuple[int, ...] = ()) -> dict[str, bytes]:
    """Per-tile objects under the SpaceNet 2 key templates: distinct bytes per tile."""
    objects = {}
    base = f"spacenet/SN2_buildings/train/{aoi}"
    for n in numbers:
        objects[f"{base}/PS-RGB/SN2_buildings_train_{aoi}_PS-RGB_img{n}.tif"] = (
            f"tif {aoi} {n} ".encode() * image_bytes)[:image_bytes]
        if n not in without_label:
            objects[f"{base}/geojson_buildings/SN2_buildings_train_{aoi}_geojson_buildings_"
                    f"img{n}.geojson"] = (
                f'{{"type": "FeatureCollection", "name": "{aoi}_img{n}", "features": []}}'
            ).encode()
    return objects


def road_tile_objects(aoi: str, numbers: list[int], image_bytes: int = 64,
                      without_label: tuple[int, ...] = ()) -> dict[str, bytes]:
    """Per-tile objects under the SpaceNet 3 key templates: distinct bytes per tile, one road."""
    objects = {}
    base = f"spacenet/SN3_roads/train/{aoi}"
    for n in numbers:
        objects[f"{base}/PS-RGB/SN3_roads_train_{aoi}_PS-RGB_img{n}.tif"] = (
            f"sn3 tif {aoi} {n} ".encode() * image_bytes)[:image_bytes]
        if n not in without_label:
            objects[f"{base}/geojson_roads/SN3_roads_train_{aoi}_geojson_roads_img{n}.geojson"] = (
                road_geojson(f"{aoi}_img{n}"))
    return objects


def road_geojson(name: str, speed: bool = False) -> bytes:
    """A SpaceNet 3 label file with one residential road (and its speed when ``speed``)."""
    properties = {"road_type": 5, "lane_number": 2, "paved": 1, "bridge_type": 2}
    if speed:
        properties["inferred_speed_mph"] = 25.0
    feature = {"type": "Feature", "properties": properties,
               "geometry": {"type": "LineString",
                            "coordinates": [[-115.30, 36.20], [-115.2997, 36.2003]]}}
    return json.dumps({"type": "FeatureCollection", "name": name,
                       "features": [feature]}).encode()
