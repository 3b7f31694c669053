"""studies/scorer_classes.py: the scorer's per-class accuracy on real test images (the ceiling for eval's
per-class figures)."""

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "studies" / "scorer_classes.py"


def test_per_class_accuracy_on_glyphs(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFCLI_HOME", str(tmp_path))
    spec = importlib.util.spec_from_file_location("scorer_classes", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["scorer_classes"] = module
    spec.loader.exec_module(module)
    report = module.per_class_accuracy("glyphs", None, epochs=1)
    assert sorted(report["classes"]) == [str(d) for d in range(10)]
    assert 0.5 < report["overall"] <= 1.0 and report["n"] > 0
    # the overall figure is the class figures weighted by class size: it lies between the extremes
    assert min(report["classes"].values()) <= report["overall"] <= max(report["classes"].values())


def test_a_bad_dataset_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFCLI_HOME", str(tmp_path))
    spec = importlib.util.spec_from_file_location("scorer_classes_cli", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown dataset 'nope'" in err and "Traceback" not in err and len(err.splitlines()) == 1
