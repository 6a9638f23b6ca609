"""Downloads against a real HTTP server on 127.0.0.1 serving a fake SpaceNet bucket."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.request
from collections import namedtuple
from pathlib import Path

import pytest
import yaml

from aerialsam import cli
from aerialsam.data import download, download_plan, spacenet
from aerialsam.data.extract import UnsafeArchiveError, safe_extract
from aerialsam.data.manifest import default_manifest_path
from aerialsam.data.s3 import DownloadError, RetryPolicy
from aerialsam.errors import InputError
from tests.fake_bucket import FakeBucket, make_tarball, tile_objects

FAST = RetryPolicy(attempts=3, backoff_s=0.01, timeout_s=10)
KEY = "spacenet/SN2_buildings/tarballs/SN2_buildings_train_AOI_2_Vegas.tar.gz"
IMAGE = ("spacenet/SN2_buildings/train/AOI_2_Vegas/PS-RGB/"
         "SN2_buildings_train_AOI_2_Vegas_PS-RGB_img{}.tif")


def write_manifest(path: Path, data: bytes | None = None, md5: str | None = None,
                   split: str = "train") -> Path:
    """The packaged manifest, with a Vegas tarball set to ``data`` (exact size, md5)."""
    document = yaml.safe_load(default_manifest_path().read_text())
    if data is not None:
        document["aois"][0]["tarballs"][split] = {
            "key": KEY, "size": len(data), "size_exact": True,
            "md5": md5 or hashlib.md5(data).hexdigest()}
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


def test_tarball_with_a_traversal_member_is_refused(bucket: FakeBucket, tmp_path: Path) -> None:
    data = make_tarball({"AOI_2_Vegas_Train/RGB-PanSharpen/a.tif": b"x",
                         "../evil.txt": b"owned"})
    bucket.objects[KEY] = data
    manifest = write_manifest(tmp_path / "manifest.yaml", data)
    dest = tmp_path / "raw"
    with pytest.raises(UnsafeArchiveError, match=r"refusing member '\.\./evil\.txt'"):
        download.download_tarball("vegas", "train", dest, endpoint=bucket.url,
                                  manifest=manifest, retry=FAST, progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (dest / "evil.txt").exists()
    assert not (dest / "AOI_2_Vegas_Train").exists()
    assert not list(dest.glob(".extract-*"))


@pytest.mark.parametrize(("files", "links", "member", "problem"), [
    ({"/etc/evil": b"x"}, {}, "/etc/evil", "absolute path"),
    ({"a/../../evil": b"x"}, {}, "a/../../evil", "'..'"),
    ({}, {"link": ("sym", "../../outside")}, "link", "symbolic link pointing outside"),
    ({}, {"link": ("sym", "/etc/passwd")}, "link", "symbolic link pointing outside"),
    ({}, {"hard": ("hard", "../outside")}, "hard", "hard link pointing outside"),
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


def test_tile_whose_etag_is_not_an_md5_is_kept_when_two_downloads_agree(
        bucket: FakeBucket, tmp_path: Path) -> None:
    # S3 objects encrypted with KMS have an ETag that looks like, but is not, an md5.
    bucket.objects.update(tile_objects("AOI_2_Vegas", [1]))
    bucket.etags[IMAGE.format(1)] = "f" * 32
    folder = download.download_tiles("vegas", 1, tmp_path, endpoint=bucket.url, retry=FAST,
                                      progress=False)
    assert (folder / "RGB-PanSharpen" / "RGB-PanSharpen_AOI_2_Vegas_img1.tif").read_bytes() == (
        bucket.objects[IMAGE.format(1)])
    assert len(bucket.gets(IMAGE.format(1))) == 2


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
