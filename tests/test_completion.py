"""Shell completion completes values, not only options: model names, samplers, views, datasets, presets."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import make_tiny_model


def _complete(words: str, home) -> list[str]:
    env = {
        **os.environ,
        "_DIFFCLI_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
        "DIFFCLI_HOME": str(home),
    }
    code = "import sys; sys.argv = ['diffcli']; from diffcli.cli.app import app; app(prog_name='diffcli')"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return done.stdout.split()


@pytest.mark.parametrize(
    "words,expected",
    [
        ("diffcli sample --sampler d", ["ddpm", "ddim", "dpm++"]),
        ("diffcli anagram 6 9 --view r", ["rot180", "rot90"]),
        ("diffcli train --dataset f", ["fashion-mnist", "fashion", "folder:"]),
        ("diffcli train --preset c", ["course"]),
        ("diffcli sample --model ", ["fashion", "mine", "mnist", "mnist-fast"]),
        ("diffcli models rm m", ["mine", "mnist", "mnist-fast"]),
        ("diffcli sample s", ["six", "seven"]),
        ("diffcli sample -m fashion sn", ["sneaker"]),
        ("diffcli anagram 6 n", ["nine"]),
        ("diffcli noise b", ["builtin:digit", "builtin:house"]),
        ("diffcli sample --init builtin:h", ["builtin:house"]),
        ("diffcli noise ho", []),  # not a builtin: the shell completes file names
    ],
)
def test_values_complete(words, expected, home):
    make_tiny_model(home, "mine")
    assert _complete(words, home) == expected
