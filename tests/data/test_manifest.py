"""The data manifest: the facts it records, its packaged copy, and validation on load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aerialsam.data.manifest import (
    REPO_MANIFEST,
    default_manifest_path,
    load_manifest,
    manifest_table,
)
from aerialsam.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_packaged_copy_is_identical_to_the_top_level_manifest() -> None:
    top = ROOT / "data_manifest.yaml"
    assert REPO_MANIFEST == top
    assert (ROOT / "aerialsam" / "data" / "data_manifest.yaml").read_bytes() == top.read_bytes()
    assert default_manifest_path().read_bytes() == top.read_bytes()


def test_default_manifest_records_the_spacenet2_facts() -> None:
    manifest = load_manifest()
    assert (manifest.bucket, manifest.region) == ("spacenet-dataset", "us-east-1")
    assert manifest.endpoint == "https://spacenet-dataset.s3.amazonaws.com"
    assert manifest.licence == "CC BY-SA 4.0"
    assert "Van Etten, A., Lindenbaum, D., Bacastow" in manifest.citation
    assert "arXiv:1807.01232" in manifest.citation
    assert [a.alias for a in manifest.aois] == ["vegas", "paris", "shanghai", "khartoum"]
    assert [a.tiles for a in manifest.aois] == [3851, 1148, 4582, 1012]
    assert [a.buildings for a in manifest.aois] == [151367, 23816, 92015, 35503]
    assert [a.number for a in manifest.aois] == [2, 3, 4, 5]
    assert [a.tarballs["train"].md5 for a in manifest.aois] == [
        "307da318bc43aaf9481828f92eda9126", "4db469e3e4e7bf025368ad730aec0888",
        "986129eecd3e842ebc2063d43b407adb", "462b4bf0466c945d708befabd4d9115b"]
    assert [a.tarballs["test"].md5 for a in manifest.aois] == [
        "d45405afd6629e693e2f9168b1291ea3", "2eaee95303e88479246e4ee2f2279b7f",
        "f51dc51fa484dc7fb89b3697bd15a950", "037d7be10530f0dd1c43d4ef79f3236e"]


def test_vegas_keys_sizes_and_folders() -> None:
    vegas = load_manifest().aoi("vegas")
    train = vegas.tarballs["train"]
    assert train.key == "spacenet/SN2_buildings/tarballs/SN2_buildings_train_AOI_2_Vegas.tar.gz"
    assert train.filename == "SN2_buildings_train_AOI_2_Vegas.tar.gz"
    assert (train.size, train.size_exact) == (23_000_000_000, False)
    assert vegas.tarballs["test"].key.endswith("/tarballs/AOI_2_Vegas_Test_public.tar.gz")
    assert vegas.tarballs["test"].size is None
    keys = vegas.tile_keys["train"]
    assert keys.image_key("AOI_2_Vegas", 1010) == (
        "spacenet/SN2_buildings/train/AOI_2_Vegas/PS-RGB/"
        "SN2_buildings_train_AOI_2_Vegas_PS-RGB_img1010.tif")
    assert keys.label_key("AOI_2_Vegas", 1010) == (
        "spacenet/SN2_buildings/train/AOI_2_Vegas/geojson_buildings/"
        "SN2_buildings_train_AOI_2_Vegas_geojson_buildings_img1010.geojson")
    assert "test" not in vegas.tile_keys
    assert (vegas.folder("train"), vegas.folder("test")) == ("AOI_2_Vegas_Train",
                                                             "AOI_2_Vegas_Test_public")


def test_aoi_lookup_by_alias_or_name() -> None:
    manifest = load_manifest()
    assert manifest.aoi("Paris").name == "AOI_3_Paris"
    assert manifest.aoi("AOI_5_Khartoum").alias == "khartoum"
    with pytest.raises(InputError, match="unknown AOI 'rio'.*vegas, paris, shanghai, khartoum"):
        manifest.aoi("rio")


def test_manifest_table_has_one_row_per_aoi() -> None:
    table = manifest_table(load_manifest())
    assert list(table["aoi"]) == ["AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai",
                                  "AOI_5_Khartoum"]
    assert list(table["size_gb"]) == [23.0, 5.3, 23.4, 4.7]
    assert table["tiles"].sum() == 3851 + 1148 + 4582 + 1012


def _edited(tmp_path: Path, edit) -> Path:
    document = yaml.safe_load((ROOT / "data_manifest.yaml").read_text())
    edit(document)
    path = tmp_path / "manifest.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def _vegas_train(document: dict) -> dict:
    return document["aois"][0]["tarballs"]["train"]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(colour="blue"), r"manifest: unknown key\(s\) \['colour'\]"),
    (lambda d: d.pop("bucket"), r"manifest: missing field\(s\) \['bucket'\]"),
    (lambda d: _vegas_train(d).update(md5="307DA318"),
     r"aois\[0\]\.tarballs\.train\.md5: '307DA318' is not 32 lowercase hex digits"),
    (lambda d: _vegas_train(d).pop("key"), r"aois\[0\]\.tarballs\.train: missing field"),
    (lambda d: _vegas_train(d).update(sha1="abc"), r"tarballs\.train: unknown key\(s\) \['sha1'\]"),
    (lambda d: d["aois"][1].update(tiles="many"), r"aois\[1\]\.tiles: expected int, found str"),
    (lambda d: d["aois"][1].update(tiles=True), r"aois\[1\]\.tiles: expected int, found bool"),
    (lambda d: d["aois"][1].update(alias="vegas"), r"aois: duplicate alias \['vegas'\]"),
    (lambda d: d["aois"][0]["tarballs"].update(val={}), r"unknown split 'val'"),
    (lambda d: d["tile_keys"]["train"].update(image="x/{aoi}.tif"), r"must hold \{n\} once"),
    (lambda d: d["tile_keys"]["train"].update(label="x/{city}_{n}.json"),
     r"no placeholder other than \{aoi\}"),
    (lambda d: d.update(endpoint="s3://spacenet-dataset"), r"is not an http\(s\) URL"),
    (lambda d: d.update(schema_version=2), r"schema_version 2 is not supported"),
    (lambda d: d["aois"][0].update(name="Vegas"), r"aois\[0\]\.name: 'Vegas' is not like"),
    (lambda d: d.update(aois=[]), r"aois: the list is empty"),
])
def test_invalid_manifests_are_refused_naming_the_field(tmp_path: Path, edit,
                                                        message: str) -> None:
    path = _edited(tmp_path, edit)
    with pytest.raises(InputError, match=message) as caught:
        load_manifest(path)
    assert str(caught.value).startswith(str(path))


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="manifest file not found"):
        load_manifest(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("aois: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_manifest(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="manifest: expected a mapping, found list"):
        load_manifest(listed)


def test_a_user_manifest_may_override_tile_keys_per_aoi(tmp_path: Path) -> None:
    def edit(document: dict) -> None:
        document["aois"][1]["tile_keys"] = {"train": {"image": "mirror/{aoi}/img{n}.tif",
                                                      "label": "mirror/{aoi}/img{n}.geojson"}}
    manifest = load_manifest(_edited(tmp_path, edit))
    assert manifest.aoi("paris").tile_keys["train"].image_key("AOI_3_Paris", 4) == (
        "mirror/AOI_3_Paris/img4.tif")
    assert manifest.aoi("vegas").tile_keys["train"].image.startswith("spacenet/")
