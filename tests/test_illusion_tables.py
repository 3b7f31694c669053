"""`make illusions` (scripts/illusion_tables.py): the "before" column uses the model's own sampling settings,
its guidance interval included, and the tables say which settings each column ran with."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from helpers import load_script

import diffcli

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "illusion_tables.py"


def _script():
    return load_script(SCRIPT, "illusions_script")


def _model(interval):
    sampling = {"sampler": "ddim", "steps": 20, "guidance": 3.0, "guidance_interval": interval}
    return SimpleNamespace(config=SimpleNamespace(sampling=sampling), size=28)


def _report(task, guidance, interval, **extra):
    base = {
        "task": task,
        "sampler": "ddim",
        "steps": 20,
        "guidance": guidance,
        "guidance_interval": interval,
        "successes": 3,
        "n": 10,
        "per_pair": 5,
        "rate": 0.3,
    }
    roles = (
        {"image_rate": 0.5, "view_rate": 0.6, "weight": 0.5}
        if task == "anagram"
        else {"far_rate": 0.5, "near_rate": 0.6, "kernel": 13, "sigma": 1.75, "far_first": 0.1}
    )
    return {**base, **roles, **extra}


def test_before_passes_the_model_s_interval_and_after_the_illusion_defaults(monkeypatch):
    script = _script()
    calls = []

    def fake_evaluate(model, task, **options):
        calls.append((task, options))
        report = _report(task, options.get("guidance", 5.0), options.get("guidance_interval"))
        return {**report, "best_of": {"rate": 0.9}} if "best_of" in options else report

    monkeypatch.setattr(diffcli, "evaluate", fake_evaluate)
    script.measure(_model([0.2, 0.7]), n=1, best_of=2, data_dir=None, seed=0)
    befores = [options for _, options in calls if "best_of" not in options]
    afters = [options for _, options in calls if "best_of" in options]
    assert len(befores) == len(afters) == 3
    assert all(
        o["guidance"] == 3.0 and o["guidance_interval"] == [0.2, 0.7] and o["sampler"] == "ddim" for o in befores
    )
    assert all("guidance" not in o and "guidance_interval" not in o for o in afters)  # the illusion defaults decide
    hybrid_before = next(o for (task, o) in calls if task == "hybrid" and "best_of" not in o)
    assert (hybrid_before["kernel"], hybrid_before["sigma"], hybrid_before["far_first"]) == (
        15,
        0.875,
        0.0,
    )  # the course's filter at 28 px


def test_a_model_without_an_interval_guides_throughout_before():
    assert _script().before_settings(_model(None))["guidance_interval"] is None


def test_the_settings_line_names_the_interval_only_when_there_is_one():
    line = _script().settings_line
    assert line(_report("anagram", 3.0, [0.2, 0.7])) == "ddim 20 steps, CFG 3 in 0.2:0.7, weight 0.5"
    assert line(_report("anagram", 5.0, None)) == "ddim 20 steps, CFG 5, weight 0.5"
    assert line(_report("hybrid", 5.0, None)) == "ddim 20 steps, CFG 5, low-pass 13 / 1.75, FAR alone for the first 10%"
