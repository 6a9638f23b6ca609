"""Bad inputs of ``aerialsam demo`` and ``aerialsam download`` (registered in the corpus)."""

from __future__ import annotations

from pathlib import Path

from tests.fuzz.corpus import Env, case, good_manifest, text_fault_cases, write

# ---- demo ---------------------------------------------------------------------------------------


def _demo(env: Env, *options: str) -> tuple[list[str], list[Path]]:
    out = env.tmp / "out"
    return [str(out), *options], [out / "AOI_2_Vegas_Train", out / "AOI_3_Paris_Train"]


for _name, _options in {
    "tiles-zero": ("--tiles-per-aoi", "0"),
    "tiles-negative": ("--tiles-per-aoi", "-4"),
    "tiles-not-a-number": ("--tiles-per-aoi", "many"),
    "seed-not-a-number": ("--seed", "x"),
    "seed-negative": ("--seed", "-1"),
    "aoi-unknown": ("--aoi", "atlantis"),
    "aoi-empty": ("--aoi", ","),
    "dataset-unknown": ("--dataset", "rails"),
}.items():
    case("demo", _name)(
        lambda env, options=_options: _demo(env, "--tiles-per-aoi", "1", *options))


@case("demo", "out-is-a-file")
def _demo_out_file(env: Env) -> tuple[list[str], list[Path]]:
    blocker = write(env.tmp / "file", "not a folder")
    return [str(blocker), "--tiles-per-aoi", "1"], []


@case("demo", "out-below-a-file")
def _demo_out_below_file(env: Env) -> tuple[list[str], list[Path]]:
    blocker = write(env.tmp / "file", "not a folder")
    return [str(blocker / "out"), "--tiles-per-aoi", "1"], [blocker / "out"]


# ---- download -----------------------------------------------------------------------------------


def _download(env: Env, *options: str) -> tuple[list[str], list[Path]]:
    dest = env.tmp / "raw"
    return ["--dest", str(dest), *options], [dest / "AOI_2_Vegas_Train"]


text_fault_cases("download", "manifest", good_manifest, "manifest.yaml",
                 lambda env, path: _download(env, "--manifest", str(path), "--tarball",
                                             "--dry-run"))


def _manifest_edit(old: str, new: str) -> None:
    def build(env: Env) -> tuple[list[str], list[Path]]:
        text = good_manifest(env)
        assert old in text, old
        path = write(env.tmp / "manifest.yaml", text.replace(old, new, 1))
        return _download(env, "--manifest", str(path), "--tarball", "--dry-run")
    return build


for _name, (_old, _new) in {
    "manifest-nan-size": ("size: 23000000000", "size: .nan"),
    "manifest-string-tiles": ("tiles: 3851", "tiles: many"),
    "manifest-unknown-key": ("\nbucket:", "\ncolour: blue\nbucket:"),
    "manifest-a-list": ("\nschema_version:", "\n- schema_version:"),
    "manifest-bad-yaml": ("\naois:", "\naois: [unclosed"),
    "manifest-bool-version": ("schema_version: 2", "schema_version: true"),
    "manifest-date": ("\nbucket:", "\nwhen: 2020-13-45\nbucket:"),
    "manifest-int-keys": ("\nbucket:", "\n1: one\nbucket:"),
}.items():
    case("download", _name)(_manifest_edit(_old, _new))


@case("download", "manifest-missing")
def _missing_manifest(env: Env) -> tuple[list[str], list[Path]]:
    return _download(env, "--manifest", str(env.tmp / "absent.yaml"), "--tarball", "--dry-run")


@case("download", "manifest-is-a-folder")
def _folder_manifest(env: Env) -> tuple[list[str], list[Path]]:
    return _download(env, "--manifest", str(env.tmp), "--tarball", "--dry-run")


@case("download", "manifest-deep-nesting")
def _deep_manifest(env: Env) -> tuple[list[str], list[Path]]:
    path = write(env.tmp / "manifest.yaml", "a: " + "[" * 20000 + "]" * 20000 + "\n")
    return _download(env, "--manifest", str(path), "--tarball", "--dry-run")


for _name, _options in (
    ("tiles-zero", ("--tiles", "0")),
    ("tiles-negative", ("--tiles", "-3")),
    ("tiles-not-a-number", ("--tiles", "few")),
    ("no-mode", ()),
    ("aoi-unknown", ("--tarball", "--dry-run", "--aoi", "atlantis")),
    ("aoi-empty", ("--tarball", "--dry-run", "--aoi", ",")),
    ("dataset-unknown", ("--tarball", "--dry-run", "--dataset", "rails")),
    ("split-unknown", ("--tarball", "--dry-run", "--split", "val")),
    ("endpoint-ftp", ("--tiles", "1", "--endpoint", "ftp://127.0.0.1/bucket")),
    ("endpoint-not-a-url", ("--tiles", "1", "--endpoint", "bucket")),
    # refused by the parser, before the network (no_sleep in case it were not)
    ("workers-zero", ("--tiles", "1", "--workers", "0", "--endpoint", "http://127.0.0.1:9")),
):
    case("download", _name, no_sleep=_name == "workers-zero")(
        lambda env, options=_options: _download(env, *options))


@case("download", "endpoint-refuses-connections", no_sleep=True)
def _refused(env: Env) -> tuple[list[str], list[Path]]:
    return _download(env, "--tiles", "1", "--aoi", "vegas", "--endpoint", "http://127.0.0.1:9")


@case("download", "dest-is-a-file")
def _dest_file(env: Env) -> tuple[list[str], list[Path]]:
    blocker = write(env.tmp / "file", "x")
    return ["--dest", str(blocker / "raw"), "--tiles", "1", "--aoi", "vegas", "--endpoint",
            "http://127.0.0.1:9"], [blocker / "raw"]
