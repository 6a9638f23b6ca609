"""The command line: `aerialsam demo`, `python -m aerialsam`, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from aerialsam import cli, spacenet


def test_demo_command_writes_aois(tmp_path: Path, capsys) -> None:
    assert cli.main(["demo", str(tmp_path), "--tiles-per-aoi", "2", "--seed", "3",
                     "--aoi", "vegas,paris"]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "AOI_2_Vegas_Train"), str(tmp_path / "AOI_3_Paris_Train")]
    assert len(spacenet.find_tiles(tmp_path)) == 4


def test_unwritable_destination_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = subprocess.run([sys.executable, "-m", "aerialsam", "demo", str(blocker / "out")],
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aerialsam demo: error:")
    assert str(blocker) in lines[0]
    assert "Traceback" not in result.stderr


def test_bad_argument_is_one_line(tmp_path: Path, capsys) -> None:
    assert cli.main(["demo", str(tmp_path), "--tiles-per-aoi", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--tiles-per-aoi: must be at least 1" in err


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("aerialsam")
    result = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("aerialsam ")
