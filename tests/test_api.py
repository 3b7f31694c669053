"""The Python API: the same results as the command line, values checked the same way (parameters named
as the API spells them), inline display in Jupyter and progress in a notebook (the layering: test_layering.py)."""

from __future__ import annotations

import io
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from helpers import png_array, run_cli
from PIL import Image

import diffcli
from diffcli.errors import UsageError


def test_import_is_lazy_and_the_api_is_listed():
    code = "import sys, diffcli; print('torch' in sys.modules, callable(diffcli.load), 'sample' in dir(diffcli.Model))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "True"]


def test_library_and_command_line_give_the_same_pixels():
    m = diffcli.load("mnist", device="cpu")
    images = m.sample(classes=[3, 7], n=2, seed=5, progress=False)
    r = run_cli(
        ["sample", "--class", "3", "--class", "7", "-n", "2", "--seed", "5", "--device", "cpu", "--out-dir", "cli"]
    )
    assert r.code == 0, r.stderr
    for image, name in zip(images.images, images.names):
        from_cli = png_array(Path("cli") / f"{name}.png")
        assert np.array_equal(np.round(image[0] * 255).astype(np.uint8), from_cli)


def test_image_sets_display_inline_and_save_with_metadata(tmp_path):
    from diffcli.io.images import read_metadata

    result = diffcli.load("mnist", device="cpu").anagram(6, 9, view="rot180", seed=3, progress=False)
    png = result._repr_png_()
    with Image.open(io.BytesIO(png)) as shown:
        assert shown.size[0] > 2 * 28  # the labelled side-by-side panel, not one tile
    path = result.save(tmp_path / "a.png")
    meta = read_metadata(path)
    assert meta["subcommand"] == "anagram" and meta["seed"] == 3 and meta["view"] == "rot180"
    assert len(result.pil) == 2 and result.tensor.shape == (2, 1, 28, 28)


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda m: m.sample(classes=3, n=0), "`n` must be between 1 and 100000, got 0"),
        (lambda m: m.sample(classes=3, guidance=float("nan")), "`guidance` must be a finite number"),
        (lambda m: m.sample(classes=3, guidance=float("inf")), "`guidance` must be a finite number"),
        (lambda m: m.sample(classes=3, seed=-1), "`seed` must be a whole number from 0"),
        (lambda m: m.sample(classes=3, seed=10**30), "`seed` must be a whole number from 0"),
        (lambda m: m.sample(classes=3, start=5), "`start` and `mask` need `init`"),
        (lambda m: m.hybrid(1, 7, sigma=float("nan")), "`sigma` must be a finite number"),
        (lambda m: m.anagram(6, 9, weight=2), "`weight` must be in [0, 1]"),
        (lambda m: m.evaluate(n=5, bogus=1), "unknown evaluation option"),
        (
            lambda m: m.sample(classes=3, guidance="5"),
            "`guidance` must be a number, got '5'",
        ),  # not a TypeError deep inside
        (lambda m: m.anagram(6, 9, weight="0.5"), "`weight` must be a number, got '0.5'"),  # as `n` refuses "2"
        (lambda m: m.hybrid(1, 7, sigma=True), "`sigma` must be a number, got True"),
        (
            lambda m: m.sample(classes=3, progress="yes"),
            "`progress` must be True, False or a progress factory, got 'yes'",
        ),
    ],
)
def test_bad_values_name_the_parameter_not_a_flag(call, words):
    m = diffcli.load("mnist", device="cpu")
    with pytest.raises(UsageError) as caught:
        call(m)
    text = caught.value.one_line()
    assert words in text and "--" not in text


def test_the_command_line_names_flags_for_the_same_errors():
    r = run_cli(["sample", "--class", "3", "-g", "nan"])
    assert r.code == 2 and "--guidance must be a finite number" in r.stderr
    r = run_cli(["hybrid", "1", "7", "--sigma", "nan"])
    assert r.code == 2 and "--sigma must be a finite number" in r.stderr
    r = run_cli(["noise", "builtin:house", "-t", "5", "--timesteps", "0"])
    assert r.code == 2 and "--timesteps must be between 1 and 100000" in r.stderr


def test_progress_in_a_notebook_is_a_bar_updated_in_place(monkeypatch):
    """A fake IPython kernel: `auto` progress must pick the notebook view and update one display."""
    updates: list[str] = []

    class Handle:
        def update(self, obj):
            updates.append(obj.data)

    class HTML:
        def __init__(self, data):
            self.data = data

    shown: list[str] = []

    def display(obj, display_id=False):
        shown.append(obj.data)
        return Handle()

    class ZMQInteractiveShell:  # the class name IPython's kernel shell has
        pass

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = lambda: ZMQInteractiveShell()
    display_module = types.ModuleType("IPython.display")
    display_module.HTML, display_module.display = HTML, display
    ipython.display = display_module
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)

    diffcli.load("mnist", device="cpu").sample(classes=1, steps=6, seed=0)
    assert len(shown) == 1 and updates, "one display, updated in place"
    assert '<progress value="6" max="6"' in updates[-1] and "data:image/png;base64" in updates[-1]
