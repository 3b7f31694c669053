"""Hostile values: NaN, infinity, negative classes, huge seeds and sizes, impossible widths, and asks for
more images than memory holds. Every bad value is one line (exit 2 for a bad option) before any work;
large asks run in constant memory."""

from __future__ import annotations

import pytest
from helpers import make_tiny_model, run_cli


def _one_line(r, code: int = 2) -> str:
    assert r.code == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args,words",
    [
        (["sample", "-c", "3", "-g", "nan"], "--guidance must be a finite number"),
        (["sample", "-c", "3", "-g", "inf"], "--guidance must be a finite number"),
        (["sample", "-c", "3", "-g", "-1"], "--guidance must be in [0, 100]"),
        (["sample", "-c", "3", "--eta", "nan"], "--eta must be a finite number"),
        (["sample", "-c", "3", "--sampler", "ddim", "--eta", "2"], "--eta must be in [0, 1]"),
        (["sample", "-c", "-1"], "no class '-1': class indices go from 0 to 9"),
        (["sample", "-c", "1.5"], "no class '1.5': class indices go from 0 to 9"),
        (["sample", "-c", "3", "--seed", "99999999999999999999999"], "--seed must be a whole number from 0 to"),
        (["sample", "-c", "3", "--seed", "-5"], "--seed must be a whole number from 0 to"),
        (["sample", "-c", "3", "--steps", "0"], "--steps must be between 1 and 100000"),
        (["sample", "-c", "3", "--stride", "0"], "--stride must be between 1 and 100000"),
        (["anagram", "6", "9", "--weight", "nan"], "--weight must be a finite number"),
        (["anagram", "6", "9", "--weight", "-0.1"], "--weight must be in [0, 1]"),
        (["hybrid", "1", "7", "--sigma", "nan"], "--sigma must be a finite number"),
        (["hybrid", "1", "7", "--sigma", "0"], "--sigma must be positive"),
        (["hybrid", "1", "7", "--kernel", "-3"], "--kernel must be at least 1"),
        (["denoise", "builtin:digit", "--method", "blur", "--sigma", "nan"], "--sigma must be a finite number"),
        (["denoise", "builtin:digit", "--method", "blur", "--sigma", "inf"], "--sigma must be a finite number"),
        (["denoise", "builtin:digit", "--guidance", "nan"], "--guidance must be a finite number"),
        (["denoise", "builtin:digit", "--noise-sigma", "nan"], "--noise-sigma"),
        (["noise", "builtin:digit", "-t", "5", "--size", "100000"], "--size must be between 1 and 7071"),
        (["noise", "builtin:digit", "-t", "5", "--size", "0"], "--size must be between 1 and 7071"),
        (["eval", "-n", "1", "--weight", "nan", "--task", "anagram"], "--weight must be a finite number"),
        (["eval", "--seed", "-1"], "--seed must be a whole number from 0"),
        (["train", "--lr", "nan"], "--lr must be a finite number"),
        (["train", "--lr", "inf"], "--lr must be a finite number"),
        (["train", "--lr", "0"], "--lr must be in (0, 10]"),
        (["train", "--guidance", "nan"], "--guidance must be a finite number"),
        (["train", "--p-uncond", "nan"], "--p-uncond must be a finite number"),
        (["train", "--noise-sigma", "inf"], "--noise-sigma must be a finite number"),
        (["train", "--width", "0"], "--width must be between 2 and 1024"),
        (["train", "--width", "7"], "--width 7 does not fit the UNet"),
        (["train", "--width", "200000"], "--width must be between 2 and 1024"),
        (["train", "--timesteps", "0"], "--timesteps must be between 1 and 100000"),
        (["train", "--seed", "-1"], "--seed must be between 0 and"),
        (["train", "--epochs", "0"], "--epochs must be between 1 and 100000"),
    ],
)
def test_bad_values_are_one_line_before_any_work(args, words):
    line = _one_line(run_cli(args), code=2)  # an unknown class is a bad value too (UsageError, docs/python.md)
    assert words in line, line


def test_a_guidance_of_nan_never_reaches_a_model_config(home):
    r = run_cli(["train", "--dataset", "glyphs", "--limit", "16", "--guidance", "nan", "--name", "n"])
    assert r.code == 2 and not (home / "models" / "n").exists()


def test_many_images_are_generated_and_written_in_batches(home, monkeypatch):
    """600 images into --out-dir: the engine is called batch by batch and each batch is on disk before
    the next one starts, so memory does not grow with -n."""
    from diffcli.generation import batches as generation

    make_tiny_model(home, "tiny", timesteps=4)
    monkeypatch.setattr(generation, "BATCH", 128)
    seen: list[tuple[int, int]] = []
    real = generation.generate

    def counting(model, terms, seeds, *args, **kwargs):
        seen.append((len(seeds), len(list((home.parent / "work" / "out").glob("*.png")))))
        return real(model, terms, seeds, *args, **kwargs)

    monkeypatch.setattr(generation, "generate", counting)
    r = run_cli(
        ["sample", "-m", "tiny", "-c", "3", "-n", "600", "--steps", "2", "--seed", "0", "--out-dir", "out", "-q"]
    )
    assert r.code == 0, r.stderr
    assert len(list((home.parent / "work" / "out").glob("*.png"))) == 600
    assert [n for n, _ in seen] == [128, 128, 128, 128, 88]
    assert [on_disk for _, on_disk in seen] == [0, 128, 256, 384, 512]


def test_a_figure_of_too_many_images_is_refused_before_generating(home, monkeypatch):
    from diffcli.generation import batches as generation

    make_tiny_model(home, "tiny", timesteps=4)
    monkeypatch.setattr(generation, "generate", lambda *a, **k: (_ for _ in ()).throw(AssertionError("generated")))
    line = _one_line(run_cli(["sample", "-m", "tiny", "-n", "200", "-o", "grid.png"]))
    assert "2000 images are too many for one figure" in line and "--out-dir" in line
