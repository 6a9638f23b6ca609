"""Every command given bad files and options: a non-zero exit and exactly one line, no traceback.

The corpus (:mod:`tests.fuzz.corpus` and the ``cases_*`` modules) is generated here, per case,
in a fresh folder; each case runs in-process through :func:`aerialsam.cli.app.main`. What a
real run would print on stderr is the captured stderr plus the log records at WARNING or
above (the command's logging handler writes those to stderr). Nothing that looks finished may
be left behind, nor a temporary file.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import pytest

import tests.fuzz.cases_data
import tests.fuzz.cases_models
import tests.fuzz.cases_prep  # noqa: F401 (registers the cases)
from aerialsam.cli.app import build_parser, main
from tests.fuzz.corpus import CASES, Base, Case, Env

COMMANDS = ("demo", "rasterize", "chip", "masks", "score", "download", "predict", "finetune",
            "evaluate")


def _params() -> list:
    params = []
    for bad in CASES:
        marks = [pytest.mark.xfail(strict=False, reason=bad.xfail, run=bad.run)] \
            if bad.xfail else []
        params.append(pytest.param(bad, id=bad.id, marks=marks))
    return params


@pytest.mark.parametrize("bad", _params())
def test_bad_input_fails_in_one_line(bad: Case, base: Base, tmp_path, capsys, caplog,
                                     monkeypatch) -> None:
    if bad.no_sleep:
        monkeypatch.setattr(time, "sleep", lambda seconds: None)
    argv, outputs = bad.build(Env(base, tmp_path))
    code = main([bad.command, *argv])
    out, err = capsys.readouterr()
    logged = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in caplog.records
              if r.levelno >= logging.WARNING]
    lines = err.strip().splitlines() + logged
    assert code != 0, f"bad input accepted (exit 0); stdout: {out[-300:]!r}"
    assert "Traceback" not in err
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"aerialsam {bad.command}: error: "), lines[0]
    assert not [p for p in outputs if p.exists()], "an output looks finished"
    assert not list(tmp_path.rglob(".*.part*")), "a temporary file was left behind"


def test_every_command_is_in_the_corpus(capsys) -> None:
    counts = Counter(bad.command for bad in CASES)
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    assert commands == set(COMMANDS)
    with capsys.disabled():
        print("\nbad inputs per command:", ", ".join(f"{c} {counts[c]}" for c in COMMANDS),
              f"(all {sum(counts.values())})")
    assert all(counts[command] >= 10 for command in COMMANDS), counts
