"""Downloads against a real HTTP server on 127.0.0.1 serving a fake SpaceNet bucket."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tarfile
import urllib.request
from collections import namedtuple
from pathlib import Path

import pytest
import yaml

from aerialsam import cli
from aerialsam.data import download, download_plan, spacenet, spacenet3
from aerialsam.data.extract import UnsafeArchiveError, safe_extract
from aerialsam.data.manifest import default_manifest_path
from aerialsam.data.s3 import BucketClient, DownloadError, RetryPolicy
from aerialsam.errors import AerialSamError, InputError
from tests.fake_bucket import (
    FakeBucket,
    make_tarball,
    road_geojson,
    road_tile_objects,
    tile_objects,
)

FAST = RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=10)
KEY = "spacenet/SN2_buildings/tarballs/SN2_buildings_train_AOI_2_Vegas.tar.gz"
IMAGE = ("spacenet/SN2_buildings/train/AOI_2_Vegas/PS-RGB/"
         "SN2_buildings_train_AOI_2_Vegas_PS-RGB_img{}.tif")


def write_manifest(path: Path, data: bytes | None = None, md5: str | None = None,
                   split: str = "train") -> Path:
    """The packaged manifest, with the Vegas buildings tarball set to ``data`` (exact size, md5)."""
    document = yaml.safe_load(default_manifest_path().read_text())
    if data is not None:
        document["datasets"]["buildings"]["aois"]["AOI_2_Vegas"]["tarballs"][split] = [{
            "key": KEY, "size": len(data), "size_exact": True,
            "md5": md5 or hashlib.md5(data).hexdigest()}]
    path.write_text(yaml.safe_dump(document))
    return path


def vegas_tarball(payload_bytes: int = 300_000, top: str = "AOI_2_Vegas_Train") -> tuple[bytes,
                                                                                          dict]:
    """A train tarball in the real layout; random payload so gzip cannot shrink it."""
    files = {
        f"{top}/RGB-PanSharpen/RGB-PanSharpen_AOI_2_Vegas_img1.tif": os.urandom(payload_bytes),
        f"{top}/geojson/buildings/buildings_AOI_2_Vegas_img1.geojson":
            b'{"type": "FeatureCollection", "features": []}',
        f"{top}/summaryData/AOI_2_Vegas_Train_Building_Solutions.csv":
            b"ImageId,BuildingId,PolygonWKT_Pix,PolygonWKT_Geo\n"
            b"AOI_2_Vegas_img1,-1,POLYGON EMPTY,POLYGON EMPTY\n",
    }
    return make_tarball(files), files


Served = namedtuple("Served", "bucket manifest files data")


@pytest.fixture
def bucket() -> FakeBucket:
    with FakeBucket(page_size=3) as served:
        yield served


@pytest.fixture
def tarball_bucket(bucket: FakeBucket, tmp_path: Path) -> Served:
    data, files = vegas_tarball()
    bucket.objects[KEY] = data
    return Served(bucket, write_manifest(tmp_path / "manifest.yaml", data), files, data)


def test_tiles_land_in_the_classic_layout_in_numeric_order(bucket: FakeBucket,
                                                           tmp_path: Path) -> None:
    # img3 has no labels and is left out; numeric order puts img10 after img7.
    bucket.objects.update(tile_objects("AOI_2_Vegas", [100, 10, 2, 7, 1, 3, 11],
                                       without_label=(3,)))
    bucket.objects.update(tile_objects("AOI_3_Paris", [5]))
    folder = download.download_tiles("vegas", 4, tmp_path / "raw", endpoint=bucket.url,
                                     workers=3, retry=FAST, progress=False)
    assert folder == tmp_path / "raw" / "AOI_2_Vegas_Train"
    tiles = spacenet.find_tiles(tmp_path / "raw")
    assert [(t.aoi, t.number) for t in tiles] == [("AOI_2_Vegas", n) for n in (1, 2, 7, 10)]
    assert all(t.geojson_path is not None for t in tiles)
    image = folder / "RGB-PanSharpen" / "RGB-PanSharpen_AOI_2_Vegas_img10.tif"
    assert image.read_bytes() == bucket.objects[IMAGE.format(10)]
    label = folder / "geojson" / "buildings" / "buildings_AOI_2_Vegas_img10.geojson"
    assert b'"AOI_2_Vegas_img10"' in label.read_bytes()
    # 13 Vegas objects at 3 keys per page: the listings followed continuation tokens.
    assert any("continuation-token" in r.query for r in bucket.listings())
    assert not list(folder.rglob("*.part*"))


def test_tiles_rerun_fetches_nothing_again(bucket: FakeBucket, tmp_path: Path) -> None:
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1, 2, 3]))
    download.download_tiles("vegas", 2, tmp_path, endpoint=bucket.url, retry=FAST,
                            progress=False)
    fetched = [r for r in bucket.requests if r.method == "GET" and r.key]
    assert len(fetched) == 4
    download.download_tiles("vegas", 3, tmp_path, endpoint=bucket.url, retry=FAST,
                            progress=False)
    refetched = [r for r in bucket.requests if r.method == "GET" and r.key][4:]
    assert sorted(r.key.rsplit("_", 1)[-1] for r in refetched) == ["img3.geojson", "img3.tif"]


def test_tile_with_corrupt_bytes_is_fetched_again(bucket: FakeBucket, tmp_path: Path) -> None:
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1]))
    bucket.corrupt_once.add(IMAGE.format(1))
    folder = download.download_tiles("vegas", 1, tmp_path, endpoint=bucket.url, retry=FAST,
                                     progress=False)
    image = folder / "RGB-PanSharpen" / "RGB-PanSharpen_AOI_2_Vegas_img1.tif"
    assert image.read_bytes() == bucket.objects[IMAGE.format(1)]
    assert len(bucket.gets(IMAGE.format(1))) == 2


def test_tarball_resumes_after_a_dropped_connection(tarball_bucket: Served,
                                                    tmp_path: Path) -> None:
    bucket = tarball_bucket.bucket
    bucket.drop_after[KEY] = 100_000
    folder = download.download_tarball("vegas", "train", tmp_path / "raw", endpoint=bucket.url,
                                       manifest=tarball_bucket.manifest, keep_archive=True,
                                       retry=FAST, progress=False)
    gets = bucket.gets(KEY)
    assert [g.range for g in gets] == [None, "bytes=100000-"]
    archive = tmp_path / "raw" / ".downloads" / "SN2_buildings_train_AOI_2_Vegas.tar.gz"
    assert hashlib.md5(archive.read_bytes()).hexdigest() == hashlib.md5(
        tarball_bucket.data).hexdigest()
    for name, data in tarball_bucket.files.items():
        assert (tmp_path / "raw" / name).read_bytes() == data
    assert [t.number for t in spacenet.find_tiles(folder)] == [1]
    assert not list((tmp_path / "raw").glob(".extract-*"))


def test_tarball_resumes_a_partial_file_from_an_earlier_run(tarball_bucket: Served,
                                                            tmp_path: Path) -> None:
    part = tmp_path / ".downloads" / "SN2_buildings_train_AOI_2_Vegas.tar.gz.part"
    part.parent.mkdir()
    part.write_bytes(tarball_bucket.data[:12_345])
    download.download_tarball("vegas", "train", tmp_path, endpoint=tarball_bucket.bucket.url,
                              manifest=tarball_bucket.manifest, retry=FAST, progress=False)
    assert [g.range for g in tarball_bucket.bucket.gets(KEY)] == ["bytes=12345-"]
    assert not part.exists()
    assert not (part.parent / "SN2_buildings_train_AOI_2_Vegas.tar.gz").exists()


def test_tarball_rerun_is_skipped(tarball_bucket: Served, tmp_path: Path) -> None:
    args = dict(endpoint=tarball_bucket.bucket.url, manifest=tarball_bucket.manifest,
                retry=FAST, progress=False)
    first = download.download_tarball("vegas", "train", tmp_path, **args)
    seen = len(tarball_bucket.bucket.requests)
    assert download.download_tarball("vegas", "train", tmp_path, **args) == first
    assert len(tarball_bucket.bucket.requests) == seen


def test_md5_mismatch_deletes_retries_once_then_fails(bucket: FakeBucket,
                                                      tmp_path: Path) -> None:
    data, _ = vegas_tarball(20_000)
    bucket.objects[KEY] = data
    wrong = "0" * 32
    manifest = write_manifest(tmp_path / "manifest.yaml", data, md5=wrong)
    with pytest.raises(DownloadError) as caught:
        download.download_tarball("vegas", "train", tmp_path / "raw", endpoint=bucket.url,
                                  manifest=manifest, retry=FAST, progress=False)
    message = str(caught.value)
    assert KEY in message and wrong in message and hashlib.md5(data).hexdigest() in message
    assert len(bucket.gets(KEY)) == 2
    assert not list((tmp_path / "raw" / ".downloads").iterdir())
    assert not (tmp_path / "raw" / "AOI_2_Vegas_Train").exists()


def test_md5_mismatch_once_recovers_on_the_retry(tarball_bucket: Served,
                                                 tmp_path: Path) -> None:
    tarball_bucket.bucket.corrupt_once.add(KEY)
    folder = download.download_tarball("vegas", "train", tmp_path,
                                       endpoint=tarball_bucket.bucket.url,
                                       manifest=tarball_bucket.manifest, retry=FAST,
                                       progress=False)
    assert len(tarball_bucket.bucket.gets(KEY)) == 2
    assert (folder / download.COMPLETE_MARKER).exists()


UNSAFE_MEMBERS = {
    "traversal": ({"../evil.txt": b"owned"}, {}, "../evil.txt", "'..' in the path"),
    "absolute": ({"/tmp/evil.txt": b"owned"}, {}, "/tmp/evil.txt", "absolute path"),
    "symlink": ({}, {"AOI_2_Vegas_Train/geojson": ("sym", "../../../evil")},
                "AOI_2_Vegas_Train/geojson", "symbolic link pointing outside"),
    "hardlink": ({}, {"AOI_2_Vegas_Train/x.tif": ("hard", "/etc/passwd")},
                 "AOI_2_Vegas_Train/x.tif", "hard link pointing outside"),
    "device": ({}, {"AOI_2_Vegas_Train/evil": ("chr", "")}, "AOI_2_Vegas_Train/evil",
               "device or FIFO"),
}


@pytest.mark.parametrize("case", list(UNSAFE_MEMBERS))
def test_tarball_with_an_unsafe_member_is_refused(bucket: FakeBucket, tmp_path: Path,
                                                  capfd: pytest.CaptureFixture,
                                                  case: str) -> None:
    files, links, member, problem = UNSAFE_MEMBERS[case]
    data = make_tarball({"AOI_2_Vegas_Train/RGB-PanSharpen/a.tif": b"x", **files}, links)
    bucket.objects[KEY] = data
    manifest = write_manifest(tmp_path / "manifest.yaml", data)
    dest = tmp_path / "raw"
    with pytest.raises(UnsafeArchiveError, match=f"refusing member {re.escape(repr(member))}: "
                                                 f"{re.escape(problem)}"):
        download.download_tarball("vegas", "train", dest, endpoint=bucket.url,
                                  manifest=manifest, retry=FAST, progress=False)
    assert not list(tmp_path.rglob("evil*")) and not Path("/tmp/evil.txt").exists()
    assert not (dest / "AOI_2_Vegas_Train").exists()
    assert not list(dest.glob(".extract-*"))
    # The command line says it in one line, without a traceback.
    assert cli.main(["download", "--aoi", "vegas", "--tarball", "--endpoint", bucket.url,
                     "--manifest", str(manifest), "--dest", str(dest)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"refusing member {member!r}" in err[0]


@pytest.mark.parametrize(("files", "links", "member", "problem"), [
    ({"/etc/evil": b"x"}, {}, "/etc/evil", "absolute path"),
    ({"a/../../evil": b"x"}, {}, "a/../../evil", "'..'"),
    ({}, {"link": ("sym", "../../outside")}, "link", "symbolic link pointing outside"),
    ({}, {"link": ("sym", "/etc/passwd")}, "link", "symbolic link pointing outside"),
    ({}, {"hard": ("hard", "../outside")}, "hard", "hard link pointing outside"),
    ({}, {"hard": ("hard", "/etc/passwd")}, "hard", "hard link pointing outside"),
    ({}, {"d/null": ("chr", "")}, "d/null", "device or FIFO"),
    ({}, {"d/sda": ("blk", "")}, "d/sda", "device or FIFO"),
    ({}, {"d/pipe": ("fifo", "")}, "d/pipe", "device or FIFO"),
])
def test_safe_extract_refuses_and_names_the_member(tmp_path: Path, files: dict, links: dict,
                                                   member: str, problem: str) -> None:
    archive = tmp_path / "bad.tar.gz"
    archive.write_bytes(make_tarball(files, links))
    with pytest.raises(UnsafeArchiveError) as caught:
        safe_extract(archive, tmp_path / "out", progress=False)
    assert f"refusing member {member!r}" in str(caught.value)
    assert problem in str(caught.value)


def test_safe_extract_keeps_links_inside(tmp_path: Path) -> None:
    archive = tmp_path / "ok.tar.gz"
    archive.write_bytes(make_tarball({"d/a.txt": b"a"}, {"d/b.txt": ("sym", "a.txt")}))
    assert safe_extract(archive, tmp_path / "out", progress=False) == 2
    assert (tmp_path / "out" / "d" / "b.txt").read_bytes() == b"a"


def test_nested_aoi_folder_is_placed_into_the_layout(bucket: FakeBucket, tmp_path: Path) -> None:
    data, files = vegas_tarball(1000, top="train/AOI_2_Vegas_Train")
    bucket.objects[KEY] = data
    manifest = write_manifest(tmp_path / "manifest.yaml", data)
    folder = download.download_tarball("vegas", "train", tmp_path / "raw", endpoint=bucket.url,
                                       manifest=manifest, retry=FAST, progress=False)
    assert (folder / "RGB-PanSharpen" / "RGB-PanSharpen_AOI_2_Vegas_img1.tif").exists()
    assert not (tmp_path / "raw" / "train").exists()


def test_404_fails_at_once_naming_the_key(bucket: FakeBucket, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "manifest.yaml", b"never served")
    with pytest.raises(DownloadError, match=r"SN2_buildings_train_AOI_2_Vegas\.tar\.gz: HTTP 404"):
        download.download_tarball("vegas", "train", tmp_path, endpoint=bucket.url,
                                  manifest=manifest, retry=FAST, progress=False)
    assert len(bucket.requests) == 1


def test_403_fails_at_once_naming_the_key(bucket: FakeBucket, tmp_path: Path) -> None:
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1]))
    bucket.forbidden.add(IMAGE.format(1))
    with pytest.raises(DownloadError, match=r"PS-RGB_img1\.tif: HTTP 403"):
        download.download_tiles("vegas", 1, tmp_path, endpoint=bucket.url, retry=FAST,
                                progress=False)
    assert len(bucket.gets(IMAGE.format(1))) == 1


def test_5xx_is_retried(tarball_bucket: Served, tmp_path: Path) -> None:
    tarball_bucket.bucket.fail_5xx[KEY] = 2
    download.download_tarball("vegas", "train", tmp_path, endpoint=tarball_bucket.bucket.url,
                              manifest=tarball_bucket.manifest, retry=FAST, progress=False)
    heads = [r for r in tarball_bucket.bucket.requests if r.method == "HEAD"]
    assert len(heads) == 3


def test_5xx_gives_up_after_the_retry_budget(tarball_bucket: Served, tmp_path: Path) -> None:
    tarball_bucket.bucket.fail_5xx[KEY] = 10
    with pytest.raises(DownloadError, match="giving up after 3 tries"):
        download.download_tarball("vegas", "train", tmp_path, endpoint=tarball_bucket.bucket.url,
                                  manifest=tarball_bucket.manifest, retry=FAST, progress=False)


def test_retries_are_logged_at_info_so_a_failure_is_one_line(
        tarball_bucket: Served, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    tarball_bucket.bucket.fail_5xx[KEY] = 10
    caplog.set_level(logging.INFO, logger="aerialsam")
    with pytest.raises(DownloadError, match="giving up after 3 tries"):
        download.download_tarball("vegas", "train", tmp_path, endpoint=tarball_bucket.bucket.url,
                                  manifest=tarball_bucket.manifest, retry=FAST, progress=False)
    retries = [r for r in caplog.records if "retry" in r.getMessage()]
    assert [r.levelno for r in retries] == [logging.INFO, logging.INFO]  # shown with -v
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_not_enough_space_is_refused_before_downloading(tarball_bucket: Served, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(download_plan.shutil, "disk_usage", lambda _: usage(10**6, 0, 1000))
    with pytest.raises(download.NotEnoughSpaceError, match="needs about .* free, has 1.0 kB"):
        download.download_tarball("vegas", "train", tmp_path, endpoint=tarball_bucket.bucket.url,
                                  manifest=tarball_bucket.manifest, retry=FAST, progress=False)
    assert not tarball_bucket.bucket.gets(KEY)


def test_dry_run_tarball_prints_key_and_size_without_network(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dry run touched the network")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    code = cli.main(["download", "--dry-run", "--aoi", "vegas", "--tarball",
                     "--dest", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert KEY in out and "~23.0 GB" in out and "307da318bc43aaf9481828f92eda9126" in out
    assert "total to fetch: ~23.0 GB" in out
    assert not list(tmp_path.iterdir())


def test_dry_run_tiles_lists_the_bucket_and_fetches_nothing(
        bucket: FakeBucket, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1, 2, 3], image_bytes=1000))
    code = cli.main(["download", "--dry-run", "--aoi", "vegas", "--tiles", "2", "--endpoint",
                     bucket.url, "--dest", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert IMAGE.format(2) in out and IMAGE.format(3) not in out
    assert "in 4 object(s)" in out
    assert not [r for r in bucket.requests if r.key]


def test_cli_downloads_tiles_and_prints_the_folder(bucket: FakeBucket, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1, 2]))
    bucket.objects.update(tile_objects("AOI_5_Khartoum", [9]))
    code = cli.main(["download", "--aoi", "vegas,khartoum", "--tiles", "5", "--endpoint",
                     bucket.url, "--dest", str(tmp_path), "--workers", "2"])
    assert code == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "AOI_2_Vegas_Train"),
                                               str(tmp_path / "AOI_5_Khartoum_Train")]
    assert len(spacenet.find_tiles(tmp_path)) == 3


def test_cli_reports_a_missing_key_in_one_line(bucket: FakeBucket, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    manifest = write_manifest(tmp_path / "manifest.yaml", b"not served")
    code = cli.main(["download", "--aoi", "vegas", "--tarball", "--endpoint", bucket.url,
                     "--manifest", str(manifest), "--dest", str(tmp_path / "raw")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and KEY in err and "404" in err


def test_tiles_of_the_test_split_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no per-tile keys for the test split"):
        download.plan_tiles("vegas", 3, tmp_path, split="test")


def test_extracted_tarball_is_a_real_archive(tarball_bucket: Served) -> None:
    # Guard on the fixture itself: the payload is random, so the tarball is not tiny.
    with tarfile.open(fileobj=io.BytesIO(tarball_bucket.data)) as tar:
        assert len(tar.getnames()) == 3
    assert len(tarball_bucket.data) > 250_000


def test_tile_corrupted_the_same_way_twice_is_refused_naming_the_etag(
        bucket: FakeBucket, tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    # Two downloads that agree prove nothing when both disagree with the ETag's md5.
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1], image_bytes=5000))
    bucket.corrupt_same.add(IMAGE.format(1))
    code = cli.main(["download", "--aoi", "vegas", "--tiles", "1", "--endpoint", bucket.url,
                     "--dest", str(tmp_path)])
    err = capfd.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    true_md5 = hashlib.md5(bucket.objects[IMAGE.format(1)]).hexdigest()
    assert err[0].startswith(f"aerialsam download: error: {IMAGE.format(1)}: the same bytes "
                             "arrived twice")
    assert f"the ETag (the md5 of a single-part upload) is {true_md5}" in err[0]
    assert len(bucket.gets(IMAGE.format(1))) == 2  # refused at the second, not after all retries
    image = tmp_path / "AOI_2_Vegas_Train" / "RGB-PanSharpen" / (
        "RGB-PanSharpen_AOI_2_Vegas_img1.tif")
    assert not image.exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and ".part" in p.name]


def test_tile_whose_etag_disagrees_with_its_bytes_is_never_kept(bucket: FakeBucket,
                                                                tmp_path: Path) -> None:
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1]))
    bucket.etags[IMAGE.format(1)] = "f" * 32
    with pytest.raises(DownloadError, match="f{32}; they were not kept"):
        download.download_tiles("vegas", 1, tmp_path, endpoint=bucket.url, retry=FAST,
                                progress=False)
    assert not list((tmp_path / "AOI_2_Vegas_Train" / "RGB-PanSharpen").iterdir())


def test_tile_with_a_multipart_etag_is_kept_after_its_length_check(bucket: FakeBucket,
                                                                   tmp_path: Path) -> None:
    # A multipart upload's ETag ("<md5 of the part md5s>-<parts>") is no md5 of the object.
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1]))
    bucket.etags[IMAGE.format(1)] = "0123456789abcdef0123456789abcdef-3"
    folder = download.download_tiles("vegas", 1, tmp_path, endpoint=bucket.url, retry=FAST,
                                      progress=False)
    assert (folder / "RGB-PanSharpen" / "RGB-PanSharpen_AOI_2_Vegas_img1.tif").read_bytes() == (
        bucket.objects[IMAGE.format(1)])
    assert len(bucket.gets(IMAGE.format(1))) == 1


def test_a_tile_cut_short_on_disk_is_fetched_again(bucket: FakeBucket, tmp_path: Path) -> None:
    # "Already there" means the listed size: a file an older version left cut short is not.
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1, 2], image_bytes=500))
    folder = download.download_tiles("vegas", 2, tmp_path, endpoint=bucket.url, retry=FAST,
                                      progress=False)
    image = folder / "RGB-PanSharpen" / "RGB-PanSharpen_AOI_2_Vegas_img2.tif"
    image.write_bytes(image.read_bytes()[:100])
    download.download_tiles("vegas", 2, tmp_path, endpoint=bucket.url, retry=FAST,
                            progress=False)
    assert image.read_bytes() == bucket.objects[IMAGE.format(2)]
    assert len(bucket.gets(IMAGE.format(2))) == 2 and len(bucket.gets(IMAGE.format(1))) == 1


@pytest.mark.parametrize("endpoint", ["ftp://spacenet.example.org/bucket", "file:///etc",
                                      "spacenet-dataset.s3.amazonaws.com", "https://"])
def test_a_non_http_endpoint_is_refused_at_once_in_one_line(
        endpoint: str, tmp_path: Path, capfd: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the endpoint was tried")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    for mode in (["--tiles", "2"], ["--tarball"], ["--tiles", "2", "--dry-run"]):
        code = cli.main(["download", "--aoi", "vegas", *mode, "--endpoint", endpoint,
                         "--dest", str(tmp_path / "raw")])
        err = capfd.readouterr().err.strip().splitlines()
        assert code == 2
        assert err == [f"aerialsam download: error: --endpoint: {endpoint!r} is not an "
                       "http:// or https:// URL of a bucket (e.g. "
                       "https://spacenet-dataset.s3.amazonaws.com)"]
    with pytest.raises(InputError, match="not an http:// or https:// URL"):
        BucketClient(endpoint)
    assert not (tmp_path / "raw").exists()


def test_an_empty_listing_is_an_error_not_a_silent_success(bucket: FakeBucket,
                                                           tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="no tiles listed under this prefix"):
        download.download_tiles("khartoum", 2, tmp_path, endpoint=bucket.url, retry=FAST,
                                progress=False)


def test_test_split_tarball_with_another_folder_name_lands_in_test_public(
        bucket: FakeBucket, tmp_path: Path) -> None:
    data, _ = vegas_tarball(1000, top="AOI_2_Vegas_Test")
    bucket.objects[KEY] = data
    manifest = write_manifest(tmp_path / "manifest.yaml", data, split="test")
    folder = download.download_tarball("vegas", "test", tmp_path / "raw", endpoint=bucket.url,
                                       manifest=manifest, retry=FAST, progress=False)
    assert folder == tmp_path / "raw" / "AOI_2_Vegas_Test_public"
    assert (folder / "RGB-PanSharpen" / "RGB-PanSharpen_AOI_2_Vegas_img1.tif").exists()
    assert [t.number for t in spacenet.find_tiles(tmp_path / "raw")] == [1]


# SpaceNet 3 (roads): the same guarantees, into the SpaceNet 3 layout.

ROADS = "spacenet/SN3_roads/tarballs/SN3_roads_{}_AOI_2_Vegas{}.tar.gz"
ROADS_KEY = ROADS.format("train", "")
SPEED_KEY = ROADS.format("train", "_geojson_roads_speed")
ROADS_TEST_KEY = ROADS.format("test_public", "")
ROAD_IMAGE = ("spacenet/SN3_roads/train/AOI_2_Vegas/PS-RGB/"
              "SN3_roads_train_AOI_2_Vegas_PS-RGB_img{}.tif")
ROAD_LABEL = ("spacenet/SN3_roads/train/AOI_2_Vegas/geojson_roads/"
              "SN3_roads_train_AOI_2_Vegas_geojson_roads_img{}.geojson")
VEGAS_ROADS = "SN3_roads_train_AOI_2_Vegas"


def write_roads_manifest(path: Path, split: str, tarballs: list[bytes],
                         md5s: list[str | None] | None = None) -> Path:
    """The packaged manifest (its SpaceNet 3 keys), Vegas roads tarballs set to exact sizes."""
    document = yaml.safe_load(default_manifest_path().read_text())
    entries = document["datasets"]["roads"]["aois"]["AOI_2_Vegas"]["tarballs"][split]
    assert len(entries) == len(tarballs)
    for entry, data, md5 in zip(entries, tarballs, md5s or [None] * len(tarballs), strict=True):
        entry.update(size=len(data), size_exact=True, md5=md5 or hashlib.md5(data).hexdigest())
    path.write_text(yaml.safe_dump(document))
    return path


def roads_tarballs(top: str = "AOI_2_Vegas", payload_bytes: int = 200_000) -> tuple[
        bytes, bytes, dict[str, bytes]]:
    """The imagery + road labels tarball and the speed-label tarball, both under ``top``,
    and every file they hold by its path in the SN3 layout (relative to the raw folder)."""
    name = "SN3_roads_train_AOI_2_Vegas"
    imagery = {f"PS-RGB/{name}_PS-RGB_img1.tif": os.urandom(payload_bytes),
               f"PS-MS/{name}_PS-MS_img1.tif": b"eight bands",
               f"geojson_roads/{name}_geojson_roads_img1.geojson": road_geojson("img1")}
    speed = {f"geojson_roads_speed/{name}_geojson_roads_speed_img1.geojson":
             road_geojson("img1", speed=True)}
    placed = {f"{VEGAS_ROADS}/{k}": v for k, v in {**imagery, **speed}.items()}
    return (make_tarball({f"{top}/{k}": v for k, v in imagery.items()}),
            make_tarball({f"{top}/{k}": v for k, v in speed.items()}), placed)


@pytest.fixture
def roads_bucket(bucket: FakeBucket, tmp_path: Path) -> Served:
    imagery, speed, placed = roads_tarballs()
    bucket.objects.update({ROADS_KEY: imagery, SPEED_KEY: speed})
    manifest = write_roads_manifest(tmp_path / "manifest.yaml", "train", [imagery, speed])
    return Served(bucket, manifest, placed, (imagery, speed))


def roads_tarball(served: Served, dest: Path, **kwargs: object) -> Path:
    return download.download_tarball("vegas", "train", dest, endpoint=served.bucket.url,
                                     manifest=served.manifest, dataset="roads", retry=FAST,
                                     progress=False, **kwargs)


def test_road_tiles_land_in_the_sn3_layout(bucket: FakeBucket, tmp_path: Path,
                                           capsys: pytest.CaptureFixture) -> None:
    # img3 has no labels; numeric order puts img10 last; SpaceNet 2 tiles are not touched.
    bucket.objects.update(road_tile_objects("AOI_2_Vegas", [10, 2, 3, 1], without_label=(3,)))
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1, 2]))
    bucket.corrupt_once.add(ROAD_IMAGE.format(2))
    code = cli.main(["download", "--dataset", "roads", "--aoi", "vegas", "--tiles", "2",
                     "--endpoint", bucket.url, "--dest", str(tmp_path)])
    assert code == 0
    folder = tmp_path / VEGAS_ROADS
    assert capsys.readouterr().out.split() == [str(folder)]
    for n in (1, 2):
        assert spacenet3.image_path(folder, n) == (
            folder / "PS-RGB" / f"SN3_roads_train_AOI_2_Vegas_PS-RGB_img{n}.tif")
        assert spacenet3.image_path(folder, n).read_bytes() == bucket.objects[ROAD_IMAGE.format(n)]
        assert spacenet3.geojson_path(folder, n) == (
            folder / "geojson_roads" / f"SN3_roads_train_AOI_2_Vegas_geojson_roads_img{n}.geojson")
        assert spacenet3.geojson_path(folder, n).read_bytes() == (
            bucket.objects[ROAD_LABEL.format(n)])
    tiles = spacenet3.find_road_tiles(tmp_path)
    assert [(t.aoi, t.number) for t in tiles] == [("AOI_2_Vegas", 1), ("AOI_2_Vegas", 2)]
    assert len(spacenet3.read_road_labels(tiles[0])) == 1
    # The corrupted image was caught by its md5 (the ETag) and fetched again.
    assert len(bucket.gets(ROAD_IMAGE.format(2))) == 2
    fetched = {r.key for r in bucket.requests if r.method == "GET" and r.key}
    assert all(k.startswith("spacenet/SN3_roads/") for k in fetched)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and ".part" in p.name]


def test_road_tile_corrupted_on_every_try_is_refused_naming_it(bucket: FakeBucket,
                                                               tmp_path: Path) -> None:
    bucket.objects.update(road_tile_objects("AOI_2_Vegas", [1]))
    bucket.corrupt_always.add(ROAD_LABEL.format(1))
    with pytest.raises(DownloadError) as caught:
        download.download_tiles("vegas", 1, tmp_path, endpoint=bucket.url, dataset="roads",
                                retry=FAST, progress=False)
    message = str(caught.value)
    assert message.startswith(ROAD_LABEL.format(1) + ": giving up after 3 tries")
    assert hashlib.md5(bucket.objects[ROAD_LABEL.format(1)]).hexdigest() in message
    assert len(bucket.gets(ROAD_LABEL.format(1))) == 3
    assert not spacenet3.geojson_path(tmp_path / VEGAS_ROADS, 1).exists()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and ".part" in p.name]


@pytest.mark.parametrize("top", ["AOI_2_Vegas", VEGAS_ROADS, "train/AOI_2_Vegas"])
def test_road_tarballs_place_images_labels_and_speed_labels(bucket: FakeBucket, tmp_path: Path,
                                                            top: str) -> None:
    imagery, speed, placed = roads_tarballs(top, payload_bytes=1000)
    bucket.objects.update({ROADS_KEY: imagery, SPEED_KEY: speed})
    manifest = write_roads_manifest(tmp_path / "manifest.yaml", "train", [imagery, speed])
    served = Served(bucket, manifest, placed, None)
    folder = roads_tarball(served, tmp_path / "raw")
    assert folder == tmp_path / "raw" / VEGAS_ROADS
    for name, data in placed.items():
        assert (tmp_path / "raw" / name).read_bytes() == data
    speed_labels = spacenet3.geojson_path(folder, 1, speed=True)
    assert speed_labels.parent == folder / "geojson_roads_speed"
    assert json.loads(speed_labels.read_text())["features"][0]["properties"][
        "inferred_speed_mph"] == 25.0
    (tile,) = spacenet3.find_road_tiles(tmp_path / "raw")
    assert tile.geojson_path == spacenet3.geojson_path(folder, 1)
    marker = json.loads((folder / download.COMPLETE_MARKER).read_text())
    assert [e["md5"] for e in marker["tarballs"]] == [hashlib.md5(imagery).hexdigest(),
                                                      hashlib.md5(speed).hexdigest()]
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == [VEGAS_ROADS]
    # A rerun asks the bucket nothing.
    seen = len(bucket.requests)
    assert roads_tarball(served, tmp_path / "raw") == folder
    assert len(bucket.requests) == seen


def test_road_tarball_resumes_after_a_cut_connection(roads_bucket: Served,
                                                     tmp_path: Path) -> None:
    bucket = roads_bucket.bucket
    bucket.drop_after[ROADS_KEY] = 100_000
    bucket.drop_after[SPEED_KEY] = 50
    roads_tarball(roads_bucket, tmp_path, keep_archive=True)
    assert [g.range for g in bucket.gets(ROADS_KEY)] == [None, "bytes=100000-"]
    assert [g.range for g in bucket.gets(SPEED_KEY)] == [None, "bytes=50-"]
    for data in roads_bucket.data:
        kept = [p for p in (tmp_path / ".downloads").iterdir() if p.read_bytes() == data]
        assert len(kept) == 1
    for name, data in roads_bucket.files.items():
        assert (tmp_path / name).read_bytes() == data


def test_road_tarball_partial_from_an_earlier_run_is_resumed(roads_bucket: Served,
                                                             tmp_path: Path) -> None:
    part = tmp_path / ".downloads" / "SN3_roads_train_AOI_2_Vegas.tar.gz.part"
    part.parent.mkdir()
    part.write_bytes(roads_bucket.data[0][:4321])
    assert "would resume after the 4321 bytes" in "\n".join(
        download.plan_tarball("vegas", "train", tmp_path, roads_bucket.manifest,
                              dataset="roads").describe())
    roads_tarball(roads_bucket, tmp_path)
    assert [g.range for g in roads_bucket.bucket.gets(ROADS_KEY)] == ["bytes=4321-"]
    assert not (tmp_path / ".downloads").exists()


def test_road_speed_tarball_md5_mismatch_is_refused_and_a_rerun_fetches_only_it(
        roads_bucket: Served, tmp_path: Path) -> None:
    bucket, (imagery, speed) = roads_bucket.bucket, roads_bucket.data
    wrong = "f" * 32
    manifest = write_roads_manifest(tmp_path / "wrong.yaml", "train", [imagery, speed],
                                    [None, wrong])
    with pytest.raises(DownloadError) as caught:
        download.download_tarball("vegas", "train", tmp_path / "raw", endpoint=bucket.url,
                                  manifest=manifest, dataset="roads", retry=FAST,
                                  progress=False)
    message = str(caught.value)
    assert message.startswith(f"{SPEED_KEY}: md5 mismatch after a retry")
    assert wrong in message and hashlib.md5(speed).hexdigest() in message
    assert len(bucket.gets(SPEED_KEY)) == 2
    folder = tmp_path / "raw" / VEGAS_ROADS
    assert not (folder / "geojson_roads_speed").exists()
    assert not list((tmp_path / "raw" / ".downloads").iterdir())
    # The verified imagery stays; with the right md5 a rerun fetches the speed labels only.
    assert spacenet3.image_path(folder, 1).exists()
    roads_tarball(roads_bucket, tmp_path / "raw")
    assert len(bucket.gets(ROADS_KEY)) == 1 and len(bucket.gets(SPEED_KEY)) == 3
    assert spacenet3.geojson_path(folder, 1, speed=True).exists()


@pytest.mark.parametrize(("files", "links", "member"), [
    ({"AOI_2_Vegas/geojson_roads_speed/../../../evil.geojson": b"{}"}, {},
     "AOI_2_Vegas/geojson_roads_speed/../../../evil.geojson"),
    ({"AOI_2_Vegas/geojson_roads_speed/a.geojson": b"{}"},
     {"AOI_2_Vegas/geojson_roads_speed/b.geojson": ("sym", "../../../../evil")},
     "AOI_2_Vegas/geojson_roads_speed/b.geojson"),
])
def test_road_speed_tarball_with_unsafe_members_is_refused(roads_bucket: Served, tmp_path: Path,
                                                           files: dict, links: dict,
                                                           member: str) -> None:
    bad = make_tarball(files, links)
    roads_bucket.bucket.objects[SPEED_KEY] = bad
    manifest = write_roads_manifest(tmp_path / "bad.yaml", "train", [roads_bucket.data[0], bad])
    dest = tmp_path / "raw"
    with pytest.raises(UnsafeArchiveError, match=f"refusing member {re.escape(repr(member))}"):
        download.download_tarball("vegas", "train", dest, endpoint=roads_bucket.bucket.url,
                                  manifest=manifest, dataset="roads", retry=FAST,
                                  progress=False)
    assert not list(tmp_path.rglob("evil*"))
    assert not (dest / VEGAS_ROADS / "geojson_roads_speed").exists()
    assert not list(dest.glob(".extract-*"))
    marker = json.loads((dest / VEGAS_ROADS / download.COMPLETE_MARKER).read_text())
    assert [e["key"] for e in marker["tarballs"]] == [ROADS_KEY]


def test_road_test_tarball_lands_images_only_in_test_public(bucket: FakeBucket,
                                                            tmp_path: Path) -> None:
    name = "SN3_roads_test_public_AOI_2_Vegas"
    data = make_tarball({f"AOI_2_Vegas/PS-RGB/{name}_PS-RGB_img7.tif": b"test image"})
    bucket.objects[ROADS_TEST_KEY] = data
    manifest = write_roads_manifest(tmp_path / "manifest.yaml", "test", [data])
    folder = download.download_tarball("vegas", "test", tmp_path / "raw", endpoint=bucket.url,
                                       manifest=manifest, dataset="roads", retry=FAST,
                                       progress=False)
    assert folder == tmp_path / "raw" / name
    assert (folder / "PS-RGB" / f"{name}_PS-RGB_img7.tif").read_bytes() == b"test image"
    (tile,) = spacenet3.find_road_tiles(tmp_path / "raw")
    assert (tile.number, tile.geojson_path) == (7, None)
    assert [r.key for r in bucket.requests if r.method == "GET"] == [ROADS_TEST_KEY]


def test_road_tarball_of_another_layout_is_refused_listing_what_it_holds(
        bucket: FakeBucket, tmp_path: Path) -> None:
    data = make_tarball({"AOI_2_Vegas_Roads_Train/RGB-PanSharpen/x.tif": b"x"})
    bucket.objects[ROADS_TEST_KEY] = data
    manifest = write_roads_manifest(tmp_path / "manifest.yaml", "test", [data])
    with pytest.raises(AerialSamError, match=r"no SN3_roads_test_public_AOI_2_Vegas/ folder "
                                             r"and no AOI_2_Vegas folder with PS-RGB/.*"
                                             r"AOI_2_Vegas_Roads_Train"):
        download.download_tarball("vegas", "test", tmp_path / "raw", endpoint=bucket.url,
                                  manifest=manifest, dataset="roads", retry=FAST,
                                  progress=False)
    # Only the verified archive stays: naming the right folder in the manifest is enough.
    assert [p.name for p in (tmp_path / "raw").rglob("*") if p.is_file()] == [
        "SN3_roads_test_public_AOI_2_Vegas.tar.gz"]
    document = yaml.safe_load(manifest.read_text())
    document["datasets"]["roads"]["aois"]["AOI_2_Vegas"]["tarballs"]["test"][0]["holds"] = (
        "RGB-PanSharpen")
    manifest.write_text(yaml.safe_dump(document))
    folder = download.download_tarball("vegas", "test", tmp_path / "raw", endpoint=bucket.url,
                                       manifest=manifest, dataset="roads", retry=FAST,
                                       progress=False)
    assert (folder / "RGB-PanSharpen" / "x.tif").read_bytes() == b"x"
    assert len(bucket.gets(ROADS_TEST_KEY)) == 1


def test_dry_run_roads_tarballs_prints_keys_md5s_and_sizes_without_network(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("the dry run touched the network")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert cli.main(["download", "--dataset", "roads", "--dry-run", "--tarball",
                     "--dest", str(tmp_path / "raw")]) == 0
    out = capsys.readouterr().out
    for aoi in ("AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai", "AOI_5_Khartoum"):
        assert f"{aoi} train (tarball) -> {tmp_path / 'raw' / f'SN3_roads_train_{aoi}'}" in out
        assert f"SN3_roads_train_{aoi}_geojson_roads_speed.tar.gz" in out
    assert "md5 06317255b5e0c6df2643efd8a50f22ae" in out
    assert "md5 d969693760d59401a84bd9215375a636" in out
    assert out.count("size unknown") == 8 + 4 + 1  # per object, per AOI total, grand total
    assert "total to fetch: size unknown" in out
    # With exact sizes in the manifest the dry run adds them up.
    imagery, speed, _ = roads_tarballs(payload_bytes=1000)
    manifest = write_roads_manifest(tmp_path / "manifest.yaml", "train", [imagery, speed])
    assert cli.main(["download", "--dataset", "roads", "--aoi", "vegas", "--dry-run",
                     "--tarball", "--manifest", str(manifest), "--dest", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"({len(imagery)} bytes)  {ROADS_KEY}" in out
    assert f"({len(speed)} bytes)  {SPEED_KEY}" in out
    assert "in 2 object(s)" in out
    assert not (tmp_path / "raw").exists()


def test_dry_run_road_tiles_lists_the_sn3_prefix_only(bucket: FakeBucket, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    bucket.objects.update(road_tile_objects("AOI_2_Vegas", [1, 2, 3], image_bytes=1000))
    assert cli.main(["download", "--dataset", "roads", "--dry-run", "--aoi", "vegas",
                     "--tiles", "2", "--endpoint", bucket.url, "--dest", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert ROAD_IMAGE.format(2) in out and ROAD_IMAGE.format(3) not in out
    assert "in 4 object(s)" in out
    assert {r.query["prefix"] for r in bucket.listings()} == {ROAD_IMAGE.split("{}")[0],
                                                              ROAD_LABEL.split("{}")[0]}
    assert not [r for r in bucket.requests if r.key]


def test_road_tiles_of_the_test_split_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no per-tile keys for the test split of roads"):
        download.plan_tiles("vegas", 3, tmp_path, split="test", dataset="roads")


def test_cli_refuses_an_unknown_dataset_and_an_old_manifest_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["download", "--dataset", "rails", "--tarball", "--dry-run",
                     "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown dataset 'rails'" in err[0] and "buildings or roads" in err[0]
    old = yaml.safe_load(default_manifest_path().read_text())
    old["schema_version"] = 1
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(old))
    assert cli.main(["download", "--manifest", str(path), "--tarball", "--dry-run",
                     "--dest", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"aerialsam download: error: {path}: schema_version 1 is the "
                             "SpaceNet 2-only manifest")


def test_a_tarball_marker_of_the_one_tarball_format_still_counts(tarball_bucket: Served,
                                                                 tmp_path: Path) -> None:
    # Markers written before an AOI could have several tarballs: one entry at the top level.
    folder = tmp_path / "AOI_2_Vegas_Train"
    folder.mkdir()
    md5 = hashlib.md5(tarball_bucket.data).hexdigest()
    (folder / download.COMPLETE_MARKER).write_text(json.dumps(
        {"key": KEY, "md5": md5, "members": 3}))
    assert download.download_tarball("vegas", "train", tmp_path,
                                      endpoint=tarball_bucket.bucket.url,
                                      manifest=tarball_bucket.manifest, retry=FAST,
                                      progress=False) == folder
    assert not tarball_bucket.bucket.requests
