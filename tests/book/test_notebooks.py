"""The book: notebooks committed clean, executed by papermill in the smoke profile, built.

The smoke book is executed once per session (in ``_toc.yml`` order, sharing one data folder,
as a reader's session would) and then rendered by Jupyter Book, as ``make book`` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import aerialsam
from aerialsam.book import notebooks

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = notebooks.toc_notebooks(ROOT)
PAGES = notebooks.toc_entries(ROOT)
# Pages where a model or an evaluation is shown: each must show a figure.
FIGURES_REQUIRED = {p.stem for p in NOTEBOOKS}


def test_toc_lists_the_first_notebook() -> None:
    assert ROOT / "book" / "01_spacenet_data.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_parametrised(path: Path) -> None:
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code)
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    assert "profile =" in "".join(tagged[0]["source"])
    assert "data_dir =" in "".join(tagged[0]["source"])


def _parametrised(path: Path, injected: str) -> Path:
    """A notebook as papermill leaves it: defaults, then the injected parameters."""
    book = nbformat.v4.new_notebook()
    book.cells = [nbformat.v4.new_code_cell('profile = "demo"\ndata_dir = "../data/demo"',
                                            metadata={"tags": ["parameters"]}),
                  nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]}),
                  nbformat.v4.new_code_cell("print(profile)")]
    nbformat.write(book, path)
    return path


@pytest.mark.parametrize(("profile", "hidden"), [("demo", True), ("smoke", False)])
def test_injected_parameters_hidden_only_when_they_repeat_the_defaults(
        tmp_path: Path, profile: str, hidden: bool) -> None:
    path = _parametrised(tmp_path / "nb.ipynb",
                         f'# Parameters\nprofile = "{profile}"\ndata_dir = "../data/demo"\n')
    parameters = {"profile": profile, "data_dir": "../data/demo"}
    assert notebooks.hide_default_parameters(path, parameters) is hidden
    tags = nbformat.read(path, as_version=4).cells[1].metadata["tags"]
    assert ("remove-cell" in tags) is hidden


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[Path, str]]:
    """The book staged with every notebook executed in the smoke profile, and the failures."""
    out = tmp_path_factory.mktemp("book")
    failures: dict[Path, str] = {}
    notebooks.stage_book(ROOT, out, "smoke", tmp_path_factory.mktemp("smoke-data"), failures)
    return out, failures


def _outputs(path: Path) -> list[dict]:
    return [o for c in json.loads(path.read_text())["cells"] for o in c.get("outputs", [])]


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(path: Path,
                                        smoke_book: tuple[Path, dict[Path, str]]) -> None:
    out, failures = smoke_book
    executed = out / path.relative_to(ROOT)
    assert executed not in failures, failures.get(executed)
    outputs = _outputs(executed)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    if path.stem in FIGURES_REQUIRED:
        assert [o for o in outputs if "image/png" in o.get("data", {})], "no figure"


@pytest.mark.notebook
def test_book_builds_with_every_page(smoke_book: tuple[Path, dict[Path, str]],
                                     tmp_path: Path) -> None:
    out, failures = smoke_book
    assert not failures
    builder = Path(sys.executable).with_name("jupyter-book")
    done = subprocess.run([str(builder), "build", str(out), "--path-output", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    html = tmp_path / "_build" / "html"
    for page in PAGES:
        built = html / page.relative_to(ROOT).with_suffix(".html")
        assert built.exists(), f"{built} missing"
        text = built.read_text()
        assert "Traceback (most recent call last)" not in text
    assert (html / "index.html").exists()


def test_cache_key_covers_every_subpackage() -> None:
    assert notebooks.PACKAGE_DIR == Path(aerialsam.__file__).resolve().parent
    assert (notebooks.PACKAGE_DIR / "training" / "loop.py").is_file()


def test_missing_book_extra_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(notebooks, "MISSING_EXTRA", "papermill")
    assert notebooks.main(["--profile", "smoke", "--out", str(tmp_path / "out"),
                           "--root", str(ROOT)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["book: error: executing the book needs the 'book' extra (papermill is not "
                   "installed): pip install 'aerialsam[book]'"]
    assert not (tmp_path / "out").exists()
