"""What a newcomer reads at a glance: one-line results, results that -q keeps, summaries of big runs."""

from __future__ import annotations

import numpy as np

from diffcli.jobs.results import ImageSet


def _grid(n: int) -> ImageSet:
    images = [np.random.default_rng(i).random((1, 28, 28), dtype=np.float32) for i in range(n)]
    per_image = [{"seed": i, "prompt": str(i % 10)} for i in range(n)]
    meta = {"subcommand": "sample", "model": "mnist", "seed": 0}
    return ImageSet(images, [f"{i % 10}-{i}" for i in range(n)], per_image, meta)


def test_an_imageset_prints_as_one_short_line():
    for n in (1, 2, 300):
        text = repr(_grid(n))
        assert len(text) < 200 and "\n" not in text and str(_grid(n)) == text, text
    assert repr(_grid(2)) == "<diffcli.ImageSet: 2 sample images of 28x28, model mnist, classes 0, 1, seeds 0, 1>"
    assert "classes 0, 1, 2, 3 (+6 more), seeds 0-299" in repr(_grid(300))


def test_models_show_is_a_short_readable_page():
    from helpers import run_cli

    r = run_cli(["models", "show", "mnist"])
    assert r.code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    text = r.stdout
    assert "{" not in text and "'" not in text  # no Python dicts
    for words in ("sampling   ddim, 20 steps, CFG", "training   recipe default", "accuracy", "lowest: class", "floor", "anagrams:", "hybrids:"):
        assert words in text, words
    assert "per_class_accuracy" in run_cli(["models", "show", "mnist", "--json"]).stdout
