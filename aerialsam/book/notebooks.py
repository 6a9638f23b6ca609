"""Execute the book's notebooks with papermill, for ``make book`` and for the tests.

The notebooks listed in ``_toc.yml`` are executed in order, with the run profile and data
folder passed as papermill parameters, into a staging copy of the book (``_config.yml``,
``_toc.yml``, markdown pages and executed notebooks) that Jupyter Book then renders. The
committed notebooks stay without outputs.

An executed notebook is reused while nothing it depends on changed: its key hashes the
notebook, the parameters, the package version and the package's source files. A notebook
that raised gets no key, so the next build runs it again.

Usage: ``python -m aerialsam.book.notebooks --profile demo --out _build/executed``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import functools
import hashlib
import logging
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import yaml

from aerialsam import __version__
from aerialsam.config import PROFILES
from aerialsam.errors import AerialSamError, InputError

try:  # the ``book`` extra: a plain install says so in one line instead of a traceback
    import nbformat
    import papermill
except ModuleNotFoundError as _missing:
    nbformat = papermill = None  # type: ignore[assignment]
    MISSING_EXTRA: str | None = _missing.name
else:
    MISSING_EXTRA = None

log = logging.getLogger(__name__)

BOOK_FILES = ("_config.yml", "_toc.yml")
PACKAGE_DIR = Path(__file__).resolve().parents[1]
"""The package's source folder, whose files every notebook's cache key hashes."""


def _toc_files(node: object) -> Iterator[str]:
    """Every page (``root`` and ``file`` entries) of a Jupyter Book table of contents, in order."""
    if isinstance(node, list):
        for item in node:
            yield from _toc_files(item)
    elif isinstance(node, dict):
        for key in ("root", "file"):
            if key in node:
                yield str(node[key])
        for key in ("parts", "chapters", "sections"):
            yield from _toc_files(node.get(key, []))


def toc_entries(root: str | Path) -> list[Path]:
    """The pages of ``_toc.yml`` under ``root`` as existing files (``.ipynb`` or ``.md``).

    Raises:
        InputError: ``_toc.yml`` is missing or names a page that does not exist.
    """
    root = Path(root)
    toc = root / "_toc.yml"
    if not toc.exists():
        raise InputError(toc, "file not found")
    pages = []
    for entry in _toc_files(yaml.safe_load(toc.read_text())):
        matches = [root / f"{entry}{ext}" for ext in (".ipynb", ".md")]
        found = [m for m in matches if m.exists()]
        if not found:
            raise InputError(toc, f"lists {entry!r} but neither .ipynb nor .md exists")
        pages.append(found[0])
    return pages


def toc_notebooks(root: str | Path) -> list[Path]:
    """The notebooks of ``_toc.yml``, in book order."""
    return [page for page in toc_entries(root) if page.suffix == ".ipynb"]


def require_book_extra() -> None:
    """Raise a one-line error naming the missing package when the ``book`` extra is absent.

    Raises:
        AerialSamError: papermill or nbformat is not installed.
    """
    if MISSING_EXTRA is not None:
        raise AerialSamError(f"executing the book needs the 'book' extra ({MISSING_EXTRA} is "
                             "not installed): pip install 'aerialsam[book]'")


def execute_notebook(source: Path, target: Path, profile: str, data_dir: Path) -> None:
    """Execute one notebook with papermill, in its own folder, writing the result to ``target``.

    Raises:
        papermill.PapermillExecutionError: a cell raised; the partial notebook is written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    parameters = {"profile": profile, "data_dir": _relative_to(data_dir, source.parent)}
    with _environment(TQDM_DISABLE="1"):  # progress bars would clutter the rendered pages
        papermill.execute_notebook(
            str(source), str(target), cwd=str(source.parent), kernel_name="python3",
            parameters=parameters, progress_bar=False, log_output=False)
    hide_default_parameters(target, parameters)


def hide_default_parameters(notebook: Path, parameters: dict[str, object]) -> bool:
    """Tag papermill's injected-parameters cell ``remove-cell`` when it only repeats defaults.

    The defaults are the notebook's own, so the rendered page shows one parameters cell, not
    two. Other values stay visible: the page must say what it ran with.

    Returns:
        Whether the cell was hidden.
    """
    book = nbformat.read(notebook, as_version=4)
    cells = {tag: cell for cell in book.cells for tag in cell.metadata.get("tags", [])}
    injected, defaults = cells.get("injected-parameters"), cells.get("parameters")
    if injected is None or defaults is None or _assignments(defaults.source) != parameters:
        return False
    injected.metadata["tags"] = [*injected.metadata["tags"], "remove-cell"]
    nbformat.write(book, notebook)
    return True


def _assignments(source: str) -> dict[str, object]:
    """The ``name = literal`` lines of a parameters cell."""
    values = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError):
                values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Environment variables set for the kernels started inside, then restored."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _relative_to(path: Path, start: Path) -> str:
    """``path`` as seen from ``start`` (the notebook's folder).

    The parameters cell the rendered book shows then holds no machine-specific absolute path.
    """
    return os.path.relpath(path.resolve(), start.resolve())


def cache_key(notebook: Path, profile: str, data_dir: Path) -> str:
    """What an executed notebook depends on: notebook, parameters, package version and code."""
    digest = hashlib.sha256()
    digest.update(notebook.read_bytes())
    digest.update(f"{profile}\0{data_dir.resolve()}\0{__version__}\0".encode())
    digest.update(_package_digest().encode())
    return digest.hexdigest()


@functools.cache
def _package_digest() -> str:
    """A hash of the package's source files, read once per process (not per notebook)."""
    digest = hashlib.sha256()
    for source in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(source.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def _key_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.key")


def stage_book(root: Path, out: Path, profile: str, data_dir: Path,
               failures: dict[Path, str] | None = None) -> list[Path]:
    """Copy the book into ``out`` with every notebook executed; return the executed notebooks.

    Notebooks whose :func:`cache_key` matches their last successful execution are not rerun.
    With ``failures``, a notebook that raises is recorded there (target -> error) and the
    others still run; without it the first error stops the build.

    Raises:
        InputError: a page of ``_toc.yml`` is missing.
        AerialSamError: the ``book`` extra (papermill, nbformat) is not installed.
        papermill.PapermillExecutionError: a notebook raised.
    """
    require_book_extra()
    out.mkdir(parents=True, exist_ok=True)
    for name in BOOK_FILES:
        shutil.copy2(root / name, out / name)
    for extra in (root / "book").glob("*.bib"):
        _copy_into(extra, root, out)
    executed = []
    for page in toc_entries(root):
        if page.suffix == ".md":
            _copy_into(page, root, out)
            continue
        target = out / page.relative_to(root)
        key = cache_key(page, profile, data_dir)
        if target.exists() and _key_path(target).exists() and _key_path(target).read_text() == key:
            log.info("unchanged, not rerun: %s", page.relative_to(root))
        else:
            log.info("executing %s (profile %s)", page.relative_to(root), profile)
            _key_path(target).unlink(missing_ok=True)
            try:
                execute_notebook(page, target, profile, data_dir)
            except papermill.PapermillExecutionError as exc:
                if failures is None:
                    raise
                failures[target] = f"{exc.ename}: {exc.evalue}"
                executed.append(target)
                continue
            _key_path(target).write_text(key)
        executed.append(target)
    return executed


def _copy_into(path: Path, root: Path, out: Path) -> None:
    target = out / path.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(path, target)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: execute the book for a profile into a staging folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", choices=sorted(PROFILES))
    parser.add_argument("--out", type=Path, default=Path("_build/executed"))
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="data folder (default: data/<profile>)")
    parser.add_argument("--root", type=Path, default=Path("."), help="the book's root folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    data_dir = args.data_dir or Path("data") / args.profile
    try:
        stage_book(args.root, args.out, args.profile, data_dir)
    except AerialSamError as exc:
        print(f"book: error: {exc}", file=sys.stderr)
        return 2
    except (papermill.PapermillExecutionError, OSError, yaml.YAMLError) as exc:
        print(f"book: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
