"""What a newcomer reads at a glance: one-line results, results that -q keeps, summaries of big runs."""

from __future__ import annotations

import re

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
    expected = (
        "sampling   ddim, 20 steps, CFG",
        "training   recipe default",
        "accuracy",
        "lowest: class",
        "floor",
        "anagrams:",
        "hybrids:",
    )
    for words in expected:
        assert words in text, words
    assert "per_class_accuracy" in run_cli(["models", "show", "mnist", "--json"]).stdout


def _pty(argv: list[str], cols: int = 100, rows: int = 30, **kw) -> tuple[int, list[str]]:
    import sys

    from helpers_pty import final_screen, run_in_pty

    argv = [sys.executable, "-m", "diffcli", *argv]
    code, output = run_in_pty(argv, env={"OMP_NUM_THREADS": "1"}, cols=cols, rows=rows, **kw)
    return code, [line for line in final_screen(output, cols, rows) if line.strip()]


def test_quiet_sample_on_a_terminal_still_names_its_file(tmp_path):
    code, lines = _pty(["-q", "sample", "7", "--steps", "2", "--seed", "0"])
    assert code == 0, lines
    assert lines[-2:-1] == ["wrote sample.png (no -o given: a new file here)"] or "wrote sample.png" in lines[-1], lines
    assert not any("image(s) in" in line or "╭" in line for line in lines), lines  # -q: no progress, no notes
    code, lines = _pty(["sample", "7", "-q", "--steps", "2", "--seed", "0", "-o", "x.png"])
    assert code == 0 and any(line.startswith("wrote x.png") for line in lines), lines


def test_a_big_out_dir_run_on_a_terminal_shows_progress_then_one_summary_line(tmp_path):
    code, lines = _pty(["sample", "7", "-n", "300", "--steps", "2", "--seed", "0", "--out-dir", "d"], timeout=120)
    assert code == 0, lines
    assert not any(".png" in line for line in lines), lines  # no path lines in or under the panel
    assert sum(line.startswith("╭─ sample") for line in lines) == 1, lines  # one final frame in the scrollback
    assert re.search(r"(step|image) (\d+)/\2", "\n".join(lines)), lines  # the final frame: done
    assert "wrote 300 images to d" in lines, lines
    assert len(list((tmp_path / "work" / "d").glob("*.png"))) == 300


def test_ctrl_c_during_an_out_dir_run_says_how_many_were_written(tmp_path):
    code, lines = _pty(
        ["sample", "7", "-n", "3000", "--steps", "2", "--seed", "0", "--out-dir", "d"],
        timeout=120,
        keys=[("step", b"\x03")],
    )
    written = len(list((tmp_path / "work" / "d").glob("*.png")))
    assert code == 130, lines
    assert f"stopped (Ctrl-C) after writing {written} image{'s' if written != 1 else ''} to d" in lines, lines


def test_model_names_are_checked_before_anything_loads(monkeypatch):
    from helpers import run_cli

    from diffcli.jobs import generating as generate

    def no_loading(*args, **kwargs):
        raise AssertionError("loaded a model before refusing")

    monkeypatch.setattr(generate, "load_generator", no_loading)
    r = run_cli(["sample", "-m", "if", "7"])
    assert r.code == 2 and "add it first: `diffcli models add if --hub DeepFloyd/IF-I-XL-v1.0`" in r.stderr, r.stderr
    r = run_cli(["sample", "-m", "mnsit", "7"])
    assert r.code == 2 and "did you mean 'mnist'?" in r.stderr, r.stderr
    assert run_cli(["models", "add", "if", "--hub", "DeepFloyd/IF-I-XL-v1.0"]).code == 0
    r = run_cli(["eval", "-m", "if"])
    assert r.code == 2 and "is text-to-image" in r.stderr, r.stderr


def test_a_class_the_model_lacks_gets_its_classes_in_one_short_line():
    from helpers import run_cli

    from diffcli.errors import UsageError

    r = run_cli(["sample", "-m", "fashion", "shoe"])
    assert r.code == 2 and len(r.stderr) < 300 and "Sneaker" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    import diffcli

    try:
        diffcli.load("mnist").sample(classes="sevn", progress=False)
    except UsageError as error:  # docs/python.md: a bad value is a UsageError
        assert "did you mean 'seven'" in str(error)
    else:
        raise AssertionError("no error")


def test_models_subcommands_typed_at_the_top_and_version_json():
    import json

    from helpers import run_cli

    r = run_cli(["list"])
    assert r.code == 2 and "Did you mean `diffcli models list`?" in r.stderr, r.stderr
    r = run_cli(["version", "--json"])
    assert r.code == 0 and set(json.loads(r.stdout)) == {"diffcli", "torch", "device"}


def test_out_with_another_image_format_is_refused_before_any_work():
    from helpers import run_cli

    r = run_cli(["sample", "7", "-o", "out.jpg"])
    assert r.code == 2 and r.stderr.count("\n") == 1 and "out.png" in r.stderr, r.stderr


def test_data_dir_may_be_the_dataset_folder_its_parent_or_raw():
    from conftest import mnist_dir

    from diffcli.data.mnist import locate

    root = mnist_dir()
    for given in (root, root / "MNIST", root / "MNIST" / "raw"):
        assert locate("mnist", given) == root / "MNIST" / "raw", given


def test_a_named_data_dir_never_goes_to_the_network_unasked(tmp_path, monkeypatch):
    import socket
    import urllib.request

    import pytest

    from diffcli.data.mnist import load_idx_dataset
    from diffcli.errors import DiffcliError

    def forbidden(*args, **kwargs):
        raise AssertionError("tried to reach the network")

    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    monkeypatch.setattr(socket.socket, "connect", forbidden)
    (tmp_path / "mine").mkdir()
    with pytest.raises(DiffcliError) as info:
        load_idx_dataset("mnist", "train", tmp_path / "mine", lambda message: None)
    assert "add `download` to download mnist" in info.value.one_line()
    assert "leave `data_dir` out to download" in info.value.one_line()
