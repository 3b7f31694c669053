"""scripts/package_builtin.py (make pretrained): a registry model packaged as a built-in one, replaced by renames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import make_tiny_model

from diffcli.models.weights import read_weights

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "package_builtin.py"


def test_a_model_is_packaged_in_float16_and_a_second_run_replaces_it(home, tmp_path):
    make_tiny_model(home, "tiny")
    source, destination = home / "models" / "tiny", tmp_path / "builtin" / "fast"
    for guidance in ("2", "3"):
        done = subprocess.run(
            [sys.executable, str(SCRIPT), str(source), str(destination), "--guidance", guidance],
            capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in destination.iterdir()) == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in destination.parent.iterdir()) == ["fast"]  # nothing staged or aside is left
    config = json.loads((destination / "config.json").read_text())
    assert config["name"] == "fast" and config["sampling"]["guidance"] == 3.0
    assert {str(t.dtype) for t in read_weights(destination / "model.safetensors", "packaged").values()} == {
        "torch.float16"
    }
