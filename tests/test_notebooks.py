"""Every notebook of the book: committed clean, and executed by papermill in the smoke profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aerialsam import notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = notebooks.toc_notebooks(ROOT)


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


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder shared by the notebooks, as in a reader's session."""
    return tmp_path_factory.mktemp("smoke-data")


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(path: Path, smoke_data: Path, tmp_path: Path) -> None:
    out = tmp_path / path.name
    notebooks.execute_notebook(path, out, "smoke", smoke_data)
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    images = [o for c in executed["cells"] for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert images, "every notebook shows at least one figure"
