"""scripts/guidance_interval_study.py: CFG inside the interval only, plain conditional outside, the
weights summing to one estimate at every timestep, and bad rows refused in one line."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "guidance_interval_study.py"


def _script():
    return load_script(SCRIPT, "guidance_interval_study")


def _model(T=1000):
    return SimpleNamespace(
        schedule=SimpleNamespace(timesteps=T),
        condition=lambda prompts: torch.tensor(prompts),
        null_condition=lambda n: torch.full((n,), 10),
    )


def test_guidance_applies_inside_the_interval_only():
    study = _script()
    terms = study.interval_terms(_model(), [3, 7], 3.0, 0.2, 0.7)
    for t, scale in ((999, 1.0), (700, 1.0), (699, 3.0), (200, 3.0), (199, 1.0), (0, 1.0)):
        active = [term for term in terms if term.applies(t)]
        assert sum(term.weight for term in active) == pytest.approx(1.0)
        conditional = sum(term.weight for term in active if not term.unconditional)
        assert conditional == pytest.approx(scale), t
        assert any(term.unconditional for term in active) == (scale != 1.0)


def test_the_whole_interval_is_ordinary_cfg_and_rows_are_checked():
    study = _script()
    whole = study.interval_terms(_model(), [3], 2.0, 0.0, 1.0)
    assert [(term.weight, term.during) for term in whole] == [(2.0, None), (-1.0, None)]
    assert study.parse_row("3:0.2:0.7") == (3.0, 0.2, 0.7)
    for bad in ("3:0.7:0.2", "3:0.2", "x:0:1", "2:0:1.5"):
        with pytest.raises(SystemExit, match="guidance-interval study: row"):
            study.parse_row(bad)


def test_a_model_that_is_not_there_is_one_line(tmp_path, monkeypatch):
    import subprocess

    monkeypatch.setenv("DIFFCLI_HOME", str(tmp_path))
    done = subprocess.run([sys.executable, str(SCRIPT), "--model", "nope", "--rows", "2:0:1"], capture_output=True, text=True)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("guidance-interval study: ") and "nope" in done.stderr and len(done.stderr.strip().splitlines()) == 1
