# Two commands set up a fresh machine: `make book` and `make test` (see README.md).
# Both create .venv when it is missing and install the project into it first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.aerialsam-installed
PROFILE ?= demo

.PHONY: install test book lint bench clean

install: $(STAMP)

# torch/torchvision go in first, as a matching pair, so that sam2 builds against them without
# an isolated build that would download torch again; its CUDA extension is optional.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q "torch==2.14.*" "torchvision==0.29.*"
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation "sam2>=1.1"
	$(PIP) install -q -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (aerialsam)" >/dev/null
	touch $(STAMP)

# The lint runs first: an upward import between stages (see aerialsam/__init__.py) fails CI.
test: lint
	$(PY) -m pytest -q

lint: install
	$(PY) -m ruff check aerialsam tests benchmarks book
	$(VENV)/bin/lint-imports

# Each benchmark prints one JSON line of figures and ratios (see CONTRIBUTING.md).
bench: install
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

book: install
	$(PY) -m aerialsam.book.notebooks --profile $(PROFILE) --out _build/executed
	$(VENV)/bin/jupyter-book build _build/executed --path-output . --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"

clean:
	rm -rf _build
