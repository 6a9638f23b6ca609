"""Bad inputs of score, predict, finetune and evaluate (registered in the corpus)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tests.fuzz.corpus import (
    GOOD_YAML,
    SPLITS_HEADER,
    Env,
    building_csv,
    case,
    good_geojson,
    good_splits,
    road_csv,
    text_fault_cases,
    write,
    write_raster,
)

# ---- score --------------------------------------------------------------------------------------


def _score(env: Env, truth: Path, proposals: Path, *options: str) -> tuple[list[str], list[Path]]:
    per_image = env.tmp / "per_image.csv"
    return [str(truth), str(proposals), "--per-image", str(per_image), *options], [per_image]


def _truth(env: Env, roads: bool = False) -> Path:
    return write(env.tmp / "truth.csv", road_csv() if roads else building_csv())


text_fault_cases("score", "proposals", lambda env: building_csv(), "proposals.csv",
                 lambda env, path: _score(env, _truth(env), path),
                 skip=("empty",))  # an empty proposal file is no proposals: F1 0, not an error
text_fault_cases("score", "truth", lambda env: building_csv(), "truth_bad.csv",
                 lambda env, path: _score(env, path, _truth(env)))
text_fault_cases("score", "road-proposals", lambda env: road_csv(), "proposals.csv",
                 lambda env, path: _score(env, _truth(env, roads=True), path),
                 skip=("empty",))  # no rows: no image scored, a warning, not an error

for _name, _row in {
    "confidence-nan": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 30 0, 30 30, 0 0))",nan,x',
    "confidence-inf": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 30 0, 30 30, 0 0))",inf,x',
    "confidence-text": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 30 0, 30 30, 0 0))",high,x',
    "confidence-empty": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 30 0, 30 30, 0 0))",,x',
    "wkt-unparsable": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 30",0.5,x',
    "wkt-nan": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 30 nan, 30 30, 0 0))",0.5,x',
    "wkt-inf": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 1e999 0, 30 30, 0 0))",0.5,x',
    "wkt-unclosed": 'AOI_2_Vegas_img1,1,"POLYGON ((0 0, 30 0, 30 30))",0.5,x',
    "building-id-text": 'AOI_2_Vegas_img1,b1,"POLYGON ((0 0, 30 0, 30 30, 0 0))",0.5,x',
    "image-id-not-spacenet": 'tile7,1,"POLYGON ((0 0, 30 0, 30 30, 0 0))",0.5,x',
    "image-id-empty": ',1,"POLYGON ((0 0, 30 0, 30 30, 0 0))",0.5,x',
    "extra-fields": 'AOI_2_Vegas_img1,1,POLYGON ((0 0, 30 0, 30 30, 0 0)),0.5,x',
}.items():
    case("score", f"proposals-{_name}")(lambda env, row=_row: _score(
        env, _truth(env), write(env.tmp / "proposals.csv", building_csv(row))))

for _name, _row in {
    "nan": 'AOI_2_Vegas_img1,"LINESTRING (0 0, nan 5)",x',
    "inf": 'AOI_2_Vegas_img1,"LINESTRING (0 0, 1e999 5)",x',
    "polygon": 'AOI_2_Vegas_img1,"POLYGON ((0 0, 9 0, 9 9, 0 0))",x',
    "lone-point": 'AOI_2_Vegas_img1,"LINESTRING (7 7)",x',
    "huge-field": 'AOI_2_Vegas_img1,"LINESTRING (' + ", ".join(f"{i} {i % 7}" for i in
                                                              range(40000)) + ')",x',
}.items():
    case("score", f"road-proposals-{_name}")(lambda env, row=_row: _score(
        env, _truth(env, roads=True), write(env.tmp / "proposals.csv", road_csv(row))))


@case("score", "proposals-missing-column")
def _no_confidence(env: Env) -> tuple[list[str], list[Path]]:
    body = 'ImageId,BuildingId,PolygonWKT_Pix\nAOI_2_Vegas_img1,1,"POLYGON ((0 0,9 0,9 9,0 0))"\n'
    return _score(env, _truth(env), write(env.tmp / "proposals.csv", body))


@case("score", "truth-mixed-header")
def _mixed(env: Env) -> tuple[list[str], list[Path]]:
    truth = write(env.tmp / "truth_bad.csv", "ImageId,PolygonWKT_Pix,WKT_Pix\n")
    return _score(env, truth, _truth(env))


@case("score", "proposals-missing")
def _absent(env: Env) -> tuple[list[str], list[Path]]:
    return _score(env, _truth(env), env.tmp / "absent.csv")


@case("score", "workers-zero")
def _workers(env: Env) -> tuple[list[str], list[Path]]:
    truth = _truth(env, roads=True)
    return _score(env, truth, truth, "--workers", "0")


@case("score", "per-image-is-a-folder")
def _per_image_folder(env: Env) -> tuple[list[str], list[Path]]:
    truth = _truth(env)
    (env.tmp / "adir").mkdir()
    return [str(truth), str(truth), "--per-image", str(env.tmp / "adir")], []


# ---- predict ------------------------------------------------------------------------------------

FAST_SAM = ("--checkpoint", "random", "--image-size", "128", "--device", "cpu")


def _predict(env: Env, *options: str, model: str = "sam2",
             src: Path | None = None) -> tuple[list[str], list[Path]]:
    out = env.tmp / "pred"
    return [model, str(src or env.base.image), str(out), *options], [out / "proposals.csv"]


for _name, _options in {
    "threshold-above-one": ("--threshold", "2"),
    "threshold-nan": ("--threshold", "nan"),
    "threshold-negative": ("--threshold", "-0.1"),
    "batch-size-zero": ("--batch-size", "0"),
    "image-size-zero": ("--image-size", "0"),
    "image-size-not-multiple-of-32": ("--image-size", "100", "--checkpoint", "random"),
    "overlap-negative": ("--overlap", "-1"),
    "size-zero": ("--size", "0"),
    "mode-unknown": ("--mode", "lasso"),
    "box-mode-without-prompts": ("--mode", "box"),
    "points-per-side-zero": ("--points-per-side", "0"),
    "pred-iou-thresh-above-one": ("--pred-iou-thresh", "1.5"),
    "stability-thresh-nan": ("--stability-thresh", "nan"),
}.items():
    case("predict", _name)(lambda env, options=_options: _predict(env, *options))

# refused by the parser's chip_side bound before any model or pixel (would be 30 GB a chip)
case("predict", "size-absurd")(lambda env: _predict(env, "--size", "100000", *FAST_SAM))

text_fault_cases("predict", "prompts", good_geojson, "prompts.geojson",
                 lambda env, path: _predict(env, "--mode", "box", "--prompts", str(path),
                                            *FAST_SAM))


@case("predict", "src-missing")
def _src_missing(env: Env) -> tuple[list[str], list[Path]]:
    return _predict(env, *FAST_SAM, src=env.tmp / "absent.tif")


@case("predict", "src-is-text")
def _src_text(env: Env) -> tuple[list[str], list[Path]]:
    return _predict(env, *FAST_SAM, src=write(env.tmp / "image.tif", "not a raster"))


@case("predict", "src-all-nan")
def _src_nan(env: Env) -> tuple[list[str], list[Path]]:
    src = write_raster(env.tmp / "image.tif", np.full((3, 64, 64), np.nan, np.float32))
    return _predict(env, *FAST_SAM, src=src)


@case("predict", "model-unknown")
def _model_unknown(env: Env) -> tuple[list[str], list[Path]]:
    return _predict(env, model="sam3")


def _run_folder(env: Env, run_json: bytes | str | None) -> Path:
    folder = env.tmp / "run"
    folder.mkdir()
    if run_json is not None:
        write(folder / "run.json", run_json)
    return folder


for _name, _run_json in {
    "run-without-run-json": None,
    "run-json-binary": bytes(range(256)),
    "run-json-latin1": '{"config": {"name": "Café"}}'.encode("latin-1"),
    "run-json-truncated": '{"config": {"model": "unet"',
    "run-json-bad-steps": json.dumps({"config": {"model": "unet", "steps": "abc"}}),
    "run-json-nan-lr": '{"config": {"model": "unet", "lr": NaN}}',
    "run-json-threshold-text": json.dumps({"config": {"model": "unet"}, "threshold": "high"}),
    "run-json-chip-size-zero": json.dumps({"config": {"model": "unet"}, "chip_size": 0}),
    "run-json-road-graph-list": json.dumps({"config": {"model": "unet", "task": "roads"},
                                            "road_graph": [1]}),
}.items():
    case("predict", _name)(lambda env, run_json=_run_json: _predict(
        env, model=str(_run_folder(env, run_json))))


@case("predict", "checkpoint-garbage")
def _checkpoint_garbage(env: Env) -> tuple[list[str], list[Path]]:
    checkpoint = write(env.tmp / "sam.pt", bytes(range(256)) * 4)
    return _predict(env, "--checkpoint", str(checkpoint), "--image-size", "128",
                    "--device", "cpu")


# every input file is checked before SAM 2 loads (and logs its random-weights warning)
@case("predict", "stretch-binary")
def _stretch_binary(env: Env) -> tuple[list[str], list[Path]]:
    return _predict(env, "--stretch", str(write(env.tmp / "s.json", bytes(range(256)))),
                    *FAST_SAM)


@case("predict", "stretch-nan-bounds")
def _stretch_nan(env: Env) -> tuple[list[str], list[Path]]:
    document = {"version": 1, "aois": {"AOI_2_Vegas": {"low": [float("nan")] * 3,
                                                       "high": [1.0] * 3}}}
    return _predict(env, "--stretch", str(write(env.tmp / "s.json", json.dumps(document))),
                    *FAST_SAM)


@case("predict", "stretch-missing")
def _stretch_missing(env: Env) -> tuple[list[str], list[Path]]:
    return _predict(env, "--stretch", str(env.tmp / "absent.json"), *FAST_SAM)


# ---- finetune -----------------------------------------------------------------------------------


def _finetune(env: Env, *args: str) -> tuple[list[str], list[Path]]:
    data = env.tmp / "data"
    return [*args, "--data", str(data)], [data / "runs"]


text_fault_cases("finetune", "config", lambda env: GOOD_YAML, "run.yaml",
                 lambda env, path: _finetune(env, str(path)))

for _name, _yaml in {
    "steps-text": 'steps: "abc"\n',
    "steps-fraction": "steps: 2.5\n",
    "steps-negative": "steps: -1\n",
    "steps-absurd": "steps: 1.0e+30\n",
    "lr-nan": "lr: .nan\n",
    "lr-inf": "lr: .inf\n",
    "lr-negative": "lr: -1.0e-3\n",
    "lr-text": "lr: fast\n",
    "augment-yes-string": 'augment: "yes"\n',
    "augment-one": "augment: 1\n",
    "aois-string": "aois: AOI_2_Vegas\n",
    "aois-numbers": "aois: [1, 2]\n",
    "unknown-key": "learning_rate: 0.1\n",
    "profile-list": "profile: [smoke]\n",
    "profile-unknown": "profile: huge\n",
    "model-unknown": "model: cnn\n",
    "image-size-100": "image_size: 100\n",
    "box-jitter-two": "box_jitter: 2\n",
    "seed-negative": "seed: -1\n",
    "workers-negative": "workers: -2\n",
    "checkpoint-number": "checkpoint: 5\n",
    "extra-not-mapping": "extra: 3\n",
    "date-value": "name: 2020-13-45\n",
    "a-list": "- model\n- unet\n",
    "a-number": "42\n",
    "int-key": "1: 2\n",
    "deep-nesting": "extra: " + "[" * 5000 + "]" * 5000 + "\n",
    "two-documents": "model: unet\n---\nmodel: sam2\n",
    "python-object": "model: !!python/object/apply:os.system ['true']\n",
}.items():
    case("finetune", f"config-{_name}")(lambda env, text=_yaml: _finetune(
        env, str(write(env.tmp / "run.yaml", text))))

for _name, _args in {
    "steps-zero": ("smoke", "--steps", "0"),
    "lr-nan": ("smoke", "--lr", "nan"),
    "lr-negative": ("smoke", "--lr", "-1"),
    "batch-size-zero": ("smoke", "--batch-size", "0"),
    "model-unknown": ("smoke", "--model", "cnn"),
    "profile-unknown": ("huge",),
    "no-config": (),
}.items():
    case("finetune", _name)(lambda env, args=_args: _finetune(env, *args))


@case("finetune", "config-missing")
def _config_missing(env: Env) -> tuple[list[str], list[Path]]:
    return _finetune(env, str(env.tmp / "absent.yaml"))


@case("finetune", "data-missing")
def _data_missing(env: Env) -> tuple[list[str], list[Path]]:
    return _finetune(env, str(write(env.tmp / "run.yaml", GOOD_YAML)))


@case("finetune", "resume-missing")
def _resume_missing(env: Env) -> tuple[list[str], list[Path]]:
    return _finetune(env, "--resume", str(env.tmp / "absent"))


@case("finetune", "resume-with-config")
def _resume_with_config(env: Env) -> tuple[list[str], list[Path]]:
    return _finetune(env, "smoke", "--resume", str(_run_folder(env, None)))


@case("finetune", "resume-binary-run-json")
def _resume_binary(env: Env) -> tuple[list[str], list[Path]]:
    return _finetune(env, "--resume", str(_run_folder(env, bytes(range(256)))))


# ---- evaluate -----------------------------------------------------------------------------------

ZERO_SHOT = ("sam2-auto", "--checkpoint", "random", "--image-size", "128", "--device", "cpu")


def _evaluate(env: Env, *args: str, splits: str | bytes | None = None
              ) -> tuple[list[str], list[Path]]:
    data = env.tmp / "data"
    data.mkdir(exist_ok=True)
    if splits is not None:
        write(data / "splits.csv", splits)
    return [*args, "--data", str(data)], [data / "reports"]


text_fault_cases("evaluate", "splits", good_splits, "data/splits.csv",
                 lambda env, path: _evaluate(env, *ZERO_SHOT))

for _name, _make in {
    "splits-missing-column": lambda env: "aoi,image_id\nAOI_2_Vegas,AOI_2_Vegas_img1\n",
    "splits-unknown-split": lambda env: good_splits(env).replace(",test,", ",holdout,"),
    "splits-empty-value": lambda env: SPLITS_HEADER + "AOI_2_Vegas,,/x.tif,test,b\n",
    "splits-source-missing": lambda env: good_splits(env).replace(str(env.base.image),
                                                                  "/nowhere/x.tif"),
}.items():
    case("evaluate", _name)(lambda env, make=_make: _evaluate(env, *ZERO_SHOT,
                                                              splits=make(env)))

for _name, _options in {
    "split-unknown": ("--split", "holdout"),
    "aoi-unknown": ("--aoi", "atlantis"),
    "image-size-100": ("--image-size", "100"),
    "image-size-zero": ("--image-size", "0"),
    "points-per-side-zero": ("--points-per-side", "0"),
    "overlap-negative": ("--overlap", "-1"),
}.items():
    case("evaluate", _name)(lambda env, options=_options: _evaluate(
        env, *ZERO_SHOT, *options, splits=good_splits(env)))


@case("evaluate", "splits-absent")
def _splits_absent(env: Env) -> tuple[list[str], list[Path]]:
    return _evaluate(env, *ZERO_SHOT)


@case("evaluate", "model-unknown")
def _eval_model_unknown(env: Env) -> tuple[list[str], list[Path]]:
    return _evaluate(env, "sam3", splits=good_splits(env))


@case("evaluate", "model-is-a-file")
def _eval_model_file(env: Env) -> tuple[list[str], list[Path]]:
    return _evaluate(env, str(write(env.tmp / "model.pt", "x")), splits=good_splits(env))


for _name, _run_json in {
    "run-without-run-json": None,
    "run-json-binary": bytes(range(256)),
    "run-json-bad-steps": json.dumps({"config": {"model": "unet", "steps": "abc"}}),
    "run-json-not-an-object": "[1, 2, 3]",
}.items():
    case("evaluate", _name)(lambda env, run_json=_run_json: _evaluate(
        env, str(_run_folder(env, run_json)), splits=good_splits(env)))
