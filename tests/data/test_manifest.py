"""The data manifest: the facts it records, its packaged copy, and validation on load."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import yaml

from aerialsam.data.manifest import (
    REPO_MANIFEST,
    default_manifest_path,
    load_manifest,
    manifest_table,
)
from aerialsam.errors import InputError
from aerialsam.viz import downloads

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
    assert [a.number for a in manifest.aois] == [2, 3, 4, 5]
    buildings = manifest.dataset("buildings").aois
    assert [a.alias for a in buildings] == ["vegas", "paris", "shanghai", "khartoum"]
    assert [a.tiles for a in buildings] == [3851, 1148, 4582, 1012]
    assert [a.buildings for a in buildings] == [151367, 23816, 92015, 35503]
    assert [a.number for a in buildings] == [2, 3, 4, 5]
    assert [[t.md5 for t in a.tarballs["train"]] for a in buildings] == [
        ["307da318bc43aaf9481828f92eda9126"], ["4db469e3e4e7bf025368ad730aec0888"],
        ["986129eecd3e842ebc2063d43b407adb"], ["462b4bf0466c945d708befabd4d9115b"]]
    assert [[t.md5 for t in a.tarballs["test"]] for a in buildings] == [
        ["d45405afd6629e693e2f9168b1291ea3"], ["2eaee95303e88479246e4ee2f2279b7f"],
        ["f51dc51fa484dc7fb89b3697bd15a950"], ["037d7be10530f0dd1c43d4ef79f3236e"]]


def test_vegas_keys_sizes_and_folders() -> None:
    vegas = load_manifest().dataset("buildings").aoi("vegas")
    (train,) = vegas.tarballs["train"]
    assert train.key == "spacenet/SN2_buildings/tarballs/SN2_buildings_train_AOI_2_Vegas.tar.gz"
    assert train.filename == "SN2_buildings_train_AOI_2_Vegas.tar.gz"
    assert (train.size, train.size_exact) == (23_000_000_000, False)
    assert train.holds == "RGB-PanSharpen"
    (test,) = vegas.tarballs["test"]
    assert test.key.endswith("/tarballs/AOI_2_Vegas_Test_public.tar.gz")
    assert test.size is None
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
    roads = manifest.dataset("roads")
    assert roads.aoi("Paris").name == "AOI_3_Paris"
    with pytest.raises(InputError, match="unknown AOI 'rio' in the roads dataset"):
        roads.aoi("rio")
    with pytest.raises(InputError, match="unknown dataset 'rails'.*use buildings or roads"):
        manifest.dataset("rails")


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


def _vegas(document: dict, dataset: str = "buildings") -> dict:
    return document["datasets"][dataset]["aois"]["AOI_2_Vegas"]


def _vegas_train(document: dict) -> dict:
    return _vegas(document)["tarballs"]["train"][0]


def _keys(document: dict) -> dict:
    return document["datasets"]["buildings"]["tile_keys"]["train"]


VEGAS = r"datasets\.buildings\.aois\.AOI_2_Vegas"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.update(colour="blue"), r"manifest: unknown key\(s\) \['colour'\]"),
    (lambda d: d.pop("bucket"), r"manifest: missing field\(s\) \['bucket'\]"),
    (lambda d: _vegas_train(d).update(md5="307DA318"),
     VEGAS + r"\.tarballs\.train\[0\]\.md5: '307DA318' is not 32 lowercase hex digits"),
    (lambda d: _vegas_train(d).pop("key"), VEGAS + r"\.tarballs\.train\[0\]: missing field"),
    (lambda d: _vegas_train(d).update(sha1="abc"),
     r"tarballs\.train\[0\]: unknown key\(s\) \['sha1'\]"),
    (lambda d: _vegas(d).update(tiles="many"), VEGAS + r"\.tiles: expected int, found str"),
    (lambda d: _vegas(d).update(tiles=True), VEGAS + r"\.tiles: expected int, found bool"),
    (lambda d: d["aois"][1].update(alias="vegas"), r"aois: duplicate alias \['vegas'\]"),
    (lambda d: _vegas(d)["tarballs"].update(val=[]), r"unknown split 'val'"),
    (lambda d: _keys(d).update(image="x/{aoi}.tif"), r"must hold \{n\} once"),
    (lambda d: _keys(d).update(label="x/{city}_{n}.json"),
     r"no placeholder other than \{aoi\}"),
    (lambda d: d.update(endpoint="s3://spacenet-dataset"), r"is not an http\(s\) URL"),
    (lambda d: d.update(schema_version=3), r"schema_version 3 is not supported \(2\)"),
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
        paris = document["datasets"]["buildings"]["aois"]["AOI_3_Paris"]
        paris["tile_keys"] = {"train": {"image": "mirror/{aoi}/img{n}.tif",
                                        "label": "mirror/{aoi}/img{n}.geojson"}}
    buildings = load_manifest(_edited(tmp_path, edit)).dataset("buildings")
    assert buildings.aoi("paris").tile_keys["train"].image_key("AOI_3_Paris", 4) == (
        "mirror/AOI_3_Paris/img4.tif")
    assert buildings.aoi("vegas").tile_keys["train"].image.startswith("spacenet/")


SN3_TRAIN_MD5 = ["06317255b5e0c6df2643efd8a50f22ae", "c13baf88ee10fe47870c303223cabf82",
                 "ef3de027c3da734411d4333bee9c273b", "46f327b550076f87babb5f7b43f27c68"]
SN3_SPEED_MD5 = ["4acf7846ed8121db1319345cfe9fdca9", "abc8199d4c522d3a14328f4f514702ad",
                 "f1db36bd17b2be2281f5f7d369e9e25d", "d969693760d59401a84bd9215375a636"]
SN3_TEST_MD5 = ["e9eb2220888ba38cab175fc6db6799a2", "21098cfe471dba6208c92b37b8203ae9",
                "2e7438b870ffd33d4453366db1c5b317", "f367c79fa0fc1d38e63a0fdd065ed957"]


def test_default_manifest_records_the_spacenet3_facts() -> None:
    roads = load_manifest().dataset("roads")
    assert roads.title == "SpaceNet 3 road networks (SN3_roads)"
    assert (roads.layout.name, roads.layout.tile_side) == ("spacenet3", 1300)
    assert [a.name for a in roads.aois] == ["AOI_2_Vegas", "AOI_3_Paris", "AOI_4_Shanghai",
                                            "AOI_5_Khartoum"]
    assert [a.tiles for a in roads.aois] == [854, 257, 1028, 283]
    assert [a.buildings for a in roads.aois] == [None] * 4
    assert [[t.md5 for t in a.tarballs["train"]] for a in roads.aois] == [
        list(pair) for pair in zip(SN3_TRAIN_MD5, SN3_SPEED_MD5, strict=True)]
    assert [[t.md5 for t in a.tarballs["test"]] for a in roads.aois] == [
        [md5] for md5 in SN3_TEST_MD5]
    for record in roads.aois:
        imagery, speed = record.tarballs["train"]
        (test,) = record.tarballs["test"]
        base = "spacenet/SN3_roads/tarballs/"
        assert imagery.key == f"{base}SN3_roads_train_{record.name}.tar.gz"
        assert speed.key == f"{base}SN3_roads_train_{record.name}_geojson_roads_speed.tar.gz"
        assert test.key == f"{base}SN3_roads_test_public_{record.name}.tar.gz"
        assert (imagery.holds, speed.holds, test.holds) == ("PS-RGB", "geojson_roads_speed",
                                                            "PS-RGB")
        # Sizes are not known exactly: none is recorded rather than a guess.
        assert all(t.size is None and not t.size_exact for t in (imagery, speed, test))
        assert "test" not in record.tile_keys


def test_roads_key_templates_render_the_exact_keys_and_folders() -> None:
    vegas = load_manifest().dataset("roads").aoi("vegas")
    keys = vegas.tile_keys["train"]
    assert keys.image_key("AOI_2_Vegas", 17) == (
        "spacenet/SN3_roads/train/AOI_2_Vegas/PS-RGB/SN3_roads_train_AOI_2_Vegas_PS-RGB_img17.tif")
    assert keys.label_key("AOI_2_Vegas", 17) == (
        "spacenet/SN3_roads/train/AOI_2_Vegas/geojson_roads/"
        "SN3_roads_train_AOI_2_Vegas_geojson_roads_img17.geojson")
    khartoum = load_manifest().dataset("roads").aoi("khartoum")
    assert khartoum.tile_keys["train"].image_key("AOI_5_Khartoum", 3) == (
        "spacenet/SN3_roads/train/AOI_5_Khartoum/PS-RGB/"
        "SN3_roads_train_AOI_5_Khartoum_PS-RGB_img3.tif")
    assert (vegas.folder("train"), vegas.folder("test")) == (
        "SN3_roads_train_AOI_2_Vegas", "SN3_roads_test_public_AOI_2_Vegas")


def test_manifest_table_of_the_roads_has_one_row_per_tarball() -> None:
    table = manifest_table(load_manifest(), dataset="roads")
    assert len(table) == 8 and "buildings" not in table.columns
    assert list(table["md5"]) == [m for pair in zip(SN3_TRAIN_MD5, SN3_SPEED_MD5, strict=True)
                                  for m in pair]
    assert table["size_gb"].isna().all()
    test = manifest_table(load_manifest(), split="test", dataset="roads")
    assert list(test["md5"]) == SN3_TEST_MD5


def _roads_vegas(document: dict) -> dict:
    return _vegas(document, "roads")


ROADS_VEGAS = r"datasets\.roads\.aois\.AOI_2_Vegas"


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: _roads_vegas(d)["tarballs"]["train"][1].update(md5="4acf"),
     ROADS_VEGAS + r"\.tarballs\.train\[1\]\.md5: '4acf' is not 32 lowercase hex digits"),
    (lambda d: _roads_vegas(d)["tarballs"].update(train={"key": "k", "md5": "0" * 32}),
     ROADS_VEGAS + r"\.tarballs\.train: expected a non-empty list of tarballs, found dict"),
    (lambda d: _roads_vegas(d)["tarballs"].update(test=[]),
     ROADS_VEGAS + r"\.tarballs\.test: expected a non-empty list of tarballs, found list"),
    (lambda d: _roads_vegas(d)["tarballs"]["train"][1].update(holds="../speed"),
     ROADS_VEGAS + r"\.tarballs\.train\[1\]\.holds: '\.\./speed' must be a folder inside"),
    (lambda d: d["datasets"]["roads"].update(layout="spacenet9"),
     r"datasets\.roads\.layout: unknown layout 'spacenet9'; use spacenet2 or spacenet3"),
    (lambda d: d["datasets"]["roads"]["aois"].update(AOI_1_Rio={"tiles": 1, "tarballs": {}}),
     r"datasets\.roads\.aois\.AOI_1_Rio: not a city of the top-level aois list"),
    (lambda d: d["datasets"]["roads"].pop("title"),
     r"datasets\.roads: missing field\(s\) \['title'\]"),
    (lambda d: d["datasets"].update(Rails=d["datasets"]["roads"]),
     r"datasets\.Rails: a dataset name is one lowercase word"),
    (lambda d: d.pop("datasets"), r"manifest: missing field\(s\) \['datasets'\]"),
    (lambda d: d.update(datasets={}), r"datasets: no dataset"),
])
def test_invalid_road_entries_are_refused_naming_the_entry(tmp_path: Path, edit,
                                                           message: str) -> None:
    path = _edited(tmp_path, edit)
    with pytest.raises(InputError, match=message) as caught:
        load_manifest(path)
    assert str(caught.value).startswith(str(path))


OLD_MANIFEST = """\
schema_version: 1
dataset: SpaceNet 2 building footprints (SN2_buildings)
bucket: spacenet-dataset
region: us-east-1
endpoint: https://spacenet-dataset.s3.amazonaws.com
licence: CC BY-SA 4.0
citation: Van Etten et al. (2018)
tile_keys:
  train:
    image: spacenet/SN2_buildings/train/{aoi}/PS-RGB/SN2_buildings_train_{aoi}_PS-RGB_img{n}.tif
    label: spacenet/SN2_buildings/train/{aoi}/geojson_buildings/x_img{n}.geojson
aois:
  - name: AOI_2_Vegas
    alias: vegas
    number: 2
    city: Las Vegas
    tiles: 3851
    buildings: 151367
    tarballs:
      train:
        key: spacenet/SN2_buildings/tarballs/SN2_buildings_train_AOI_2_Vegas.tar.gz
        md5: 307da318bc43aaf9481828f92eda9126
"""


def test_a_manifest_of_the_old_schema_gets_one_line_saying_what_changed(tmp_path: Path) -> None:
    path = tmp_path / "mirror.yaml"
    path.write_text(OLD_MANIFEST)
    with pytest.raises(InputError) as caught:
        load_manifest(path)
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{path}: schema_version 1 is the SpaceNet 2-only manifest")
    assert "`datasets`" in message and "`aois`" in message and "packaged data_manifest" in message


def test_plot_manifest_counts_draws_a_figure_per_dataset() -> None:
    manifest = load_manifest()
    for dataset, panels, first in (("buildings", 3, "training tiles (650 x 650 px)"),
                                   ("roads", 1, "training tiles (1300 x 1300 px)")):
        fig = downloads.plot_manifest_counts(manifest, dataset)
        try:
            assert len(fig.axes) == panels
            assert fig.axes[0].get_title() == first
            heights = [bar.get_height() for bar in fig.axes[0].patches]
            assert heights == [a.tiles for a in manifest.dataset(dataset).aois]
        finally:
            plt.close(fig)


@pytest.mark.parametrize(("data", "message"), [
    (bytes(range(256)), "not UTF-8 text: NUL byte at byte offset 0"),
    ("licence: Café\n".encode("latin-1"), "not UTF-8 text: byte 0xe9 at byte offset 12 (line 1)"),
    (b"when: 2020-13-45\n", "not valid YAML (ValueError: month must be in 1..12)"),
    (b"1: one\n", "manifest: unknown key(s) [1]"),
])
def test_unreadable_manifests_are_one_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "manifest.yaml"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        load_manifest(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)
