"""studies/guidance_interval.py: bad rows and models refused in one line (the interval itself is
the library's `guidance_interval`, tested in test_guidance.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from helpers import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "guidance_interval.py"


def _script():
    return load_script(SCRIPT, "guidance_interval_study")


def test_rows_are_checked():
    study = _script()
    assert study.parse_row("3:0.2:0.7") == (3.0, 0.2, 0.7)
    for bad in ("3:0.7:0.2", "3:0.2", "x:0:1", "2:0:1.5"):
        with pytest.raises(SystemExit, match="guidance-interval study: row"):
            study.parse_row(bad)


def test_a_model_that_is_not_there_is_one_line(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setenv("DIFFCLI_HOME", str(tmp_path))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", "nope", "--rows", "2:0:1"], capture_output=True, text=True
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert (
        done.stderr.startswith("guidance-interval study: ")
        and "nope" in done.stderr
        and len(done.stderr.strip().splitlines()) == 1
    )
