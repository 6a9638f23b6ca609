#!/usr/bin/env bash
# The wheels benchmarks/gpu_suite.py needs on the GPU machine, into .whl/ (see GPU.md).
# That machine has torch, numpy, scipy, pandas, scikit-image and matplotlib, not these; the
# versions are this checkout's .venv's, for CPython 3.12 on x86-64 Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
mkdir -p .git/info; grep -qsx '/.whl/' .git/info/exclude || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir .whl
pinned() { for name in "$@"; do echo "$name==$($PY -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")"; done; }
# pure Python with no wheel on PyPI, and the project itself: built here (no CUDA extension)
SAM2_BUILD_CUDA=0 $PY -m pip wheel -q --no-deps --no-build-isolation -w .whl . \
    $(pinned sam2 antlr4-python3-runtime iopath)
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any -d .whl \
    $(pinned affine beautifulsoup4 geopandas hydra-core jsonschema jsonschema-specifications \
             monai omegaconf pyproj rasterio referencing rpds-py shapely soupsieve)
du -sh .whl
