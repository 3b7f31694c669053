"""`diffcli sample`, `anagram` and `hybrid` on a tiny model: outputs, seeds, SDEdit, inpainting, bad input."""

from pathlib import Path

import numpy as np
import pytest
from helpers import make_tiny_model, png_array, run_cli
from PIL import Image

from diffcli.io.images import read_metadata


@pytest.fixture
def tiny(home):
    make_tiny_model(home, "tiny", timesteps=20)
    return ["--model", "tiny", "--device", "cpu"]


def test_single_class_pipes_one_png(tiny):
    r = run_cli(["sample", *tiny, "--class", "3", "--seed", "0", "-o", "-"])
    assert r.code == 0, r.stderr
    assert png_array(r.stdout_bytes).shape == (16, 16)


def test_seed_i_is_sample_i_whatever_the_batch(tiny, tmp_path):
    r = run_cli(
        [
            "sample",
            *tiny,
            "--class",
            "seven",
            "-n",
            "3",
            "--seed",
            "10",
            "--out-dir",
            str(tmp_path / "many"),
            "--sampler",
            "ddpm",
        ]
    )
    paths = r.stdout.split()
    assert r.code == 0 and len(paths) == 3 and paths[2].endswith("7-12.png")
    alone = run_cli(["sample", *tiny, "--class", "7", "--seed", "12", "-o", "-", "--sampler", "ddpm"])
    assert (
        np.abs(
            png_array(alone.stdout_bytes).astype(int) - png_array(__import__("pathlib").Path(paths[2])).astype(int)
        ).max()
        <= 1
    )
    assert read_metadata(paths[0])["seed"] == 10


def test_every_class_grid_and_json(tiny, tmp_path):
    r = run_cli(["sample", *tiny, "-n", "2", "--steps", "5", "--seed", "1", "-o", str(tmp_path / "g.png"), "--json"])
    info = r.json()
    assert r.code == 0 and len(info["prompts"]) == 20 and info["steps"] == 5
    assert png_array(tmp_path / "g.png").shape[0] > 10 * 16  # ten labelled rows


def test_chain_strip(tiny, tmp_path):
    r = run_cli(["sample", *tiny, "--class", "1", "--chain", "--seed", "0", "-o", str(tmp_path / "c.png")])
    assert r.code == 0, r.stderr
    strip = png_array(tmp_path / "c.png")
    assert strip.shape[1] > 10 * strip.shape[0] * 0.5  # ten chain frames plus the result


def test_sdedit_keeps_more_of_the_image_at_a_lower_start(tiny, tmp_path):
    Image.fromarray(np.where(np.arange(16)[None, :] < 8, 255, 0).repeat(16, 0).astype(np.uint8)).save(
        tmp_path / "half.png"
    )
    init = png_array(tmp_path / "half.png").astype(float)
    diffs = []
    for start in (2, 19):
        r = run_cli(
            [
                "sample",
                *tiny,
                "--class",
                "0",
                "--init",
                str(tmp_path / "half.png"),
                "--start",
                str(start),
                "--seed",
                "0",
                "-o",
                "-",
            ]
        )
        assert r.code == 0, r.stderr
        diffs.append(np.abs(png_array(r.stdout_bytes).astype(float) - init).mean())
    assert diffs[0] < diffs[1]


def test_a_start_sweep_is_one_run_per_start_in_one_command(tiny, tmp_path):
    Image.fromarray(np.where(np.arange(16)[None, :] < 8, 255, 0).repeat(16, 0).astype(np.uint8)).save(
        tmp_path / "half.png"
    )
    common = [*tiny, "--class", "0", "--init", str(tmp_path / "half.png"), "--seed", "0"]
    r = run_cli(["sample", *common, "--start", "2", "--start", "19", "--out-dir", str(tmp_path / "sweep"), "--json"])
    assert r.code == 0, r.stderr
    info = r.json()
    assert info["starts"] == [2, 19] and [Path(p).name for p in info["outputs"]] == ["0-0-t2.png", "0-0-t19.png"]
    for start in (2, 19):  # each column is exactly the single-start run
        alone = run_cli(["sample", *common, "--start", str(start), "-o", "-"])
        assert np.array_equal(png_array(alone.stdout_bytes), png_array(tmp_path / "sweep" / f"0-0-t{start}.png"))
    panel = run_cli(
        ["sample", *common, "--start", "2", "--start", "10", "--start", "19", "-o", str(tmp_path / "p.png")]
    )
    assert (
        panel.code == 0 and png_array(tmp_path / "p.png").shape[1] > 3.5 * png_array(tmp_path / "p.png").shape[0] * 0.8
    )  # input + 3 columns
    assert run_cli(["sample", *common, "--start", "2", "--start", "5", "--chain"]).code == 2


def test_inpainting_keeps_the_unmasked_pixels(tiny, tmp_path):
    Image.fromarray(np.full((16, 16), 200, np.uint8)).save(tmp_path / "grey.png")
    mask = np.zeros((16, 16), np.uint8)
    mask[:, 8:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    r = run_cli(
        [
            "sample",
            *tiny,
            "--class",
            "2",
            "--init",
            str(tmp_path / "grey.png"),
            "--mask",
            str(tmp_path / "mask.png"),
            "--seed",
            "0",
            "-o",
            "-",
        ]
    )
    out = png_array(r.stdout_bytes).astype(int)
    assert r.code == 0, r.stderr
    assert np.abs(out[:, :8] - 200).max() <= 1 and np.abs(out[:, 8:] - 200).mean() > 5


def test_grey_mask_is_thresholded_with_a_notice(tiny, tmp_path):
    Image.fromarray(np.full((16, 16), 100, np.uint8)).save(tmp_path / "i.png")
    Image.fromarray(np.full((16, 16), 128, np.uint8)).save(tmp_path / "m.png")
    r = run_cli(
        [
            "sample",
            *tiny,
            "--init",
            str(tmp_path / "i.png"),
            "--mask",
            str(tmp_path / "m.png"),
            "--class",
            "1",
            "--seed",
            "0",
            "-o",
            "-",
        ]
    )
    assert r.code == 0 and "thresholded" in r.stderr


def test_anagram_and_hybrid_run(tiny, tmp_path):
    r = run_cli(
        ["anagram", "6", "9", "--view", "rot180", *tiny, "-n", "2", "--seed", "0", "--out-dir", str(tmp_path / "a")]
    )
    assert r.code == 0, r.stderr
    paths = r.stdout.split()
    assert len(paths) == 4 and "9-rot180-1.png" in paths[3]
    a, b = png_array(__import__("pathlib").Path(paths[0])), png_array(__import__("pathlib").Path(paths[1]))
    assert np.array_equal(np.rot90(a, 2), b)  # the second file is the first seen through the view
    r = run_cli(["hybrid", "1", "7", "--explain", *tiny, "--seed", "0", "-o", str(tmp_path / "h.png")])
    assert r.code == 0, r.stderr
    assert png_array(tmp_path / "h.png").shape[1] > 3 * 96


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["sample", "--class", "11"], 2, "knows the classes 0-9"),
        (["sample", "--class", "3", "--steps", "21"], 2, "larger than the model's T = 20"),
        (["sample", "--class", "3", "-n", "0"], 2, "-n must be between 1 and 100000, got 0"),
        (
            ["sample", "--class", "3", "-n", "100000000"],
            2,
            "-n must be between 1 and 100000, got 100000000",
        ),  # at once, not after minutes of lists
        (["sample", "--start", "5"], 2, "need --init"),
        (
            ["sample", "--class", "3", "--offload", "bogus"],
            2,
            "unknown --offload 'bogus'; choose one of auto, none, model, sequential",
        ),  # for any model
        (["sample", "--sampler", "euler"], 2, "unknown sampler"),
        (["anagram", "6", "9", "--view", "spin"], 2, "unknown view"),
        (["anagram", "6", "9", "--weight", "2"], 2, "--weight"),
        (["hybrid", "1", "7", "--kernel", "4"], 2, "odd"),
        (["hybrid", "1", "7", "--kernel", "41"], 2, "larger than the model's 16x16"),
        (["hybrid", "old man", "campfire"], 2, "diffcli models add"),
    ],
)
def test_bad_inputs(tiny, args, code, message):
    r = run_cli([*args, *tiny, "-o", "x.png"])
    assert r.code == code, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_same_prompt_twice_warns(tiny):
    r = run_cli(["anagram", "3", "three", *tiny, "--seed", "0", "-o", "x.png"])
    assert r.code == 0 and "warning" in r.stderr


def test_guidance_needs_a_null_class(home):
    make_tiny_model(home, "nonull", timesteps=20, null_class=False)
    r = run_cli(["sample", "--model", "nonull", "--class", "1", "--guidance", "3", "-o", "x.png"])
    assert r.code == 2 and "null class" in r.stderr


def test_init_and_mask_sizes_must_match(tiny, tmp_path):
    Image.new("L", (16, 16)).save(tmp_path / "a.png")
    Image.new("L", (20, 16)).save(tmp_path / "m.png")
    r = run_cli(["sample", *tiny, "--init", str(tmp_path / "a.png"), "--mask", str(tmp_path / "m.png"), "-o", "x.png"])
    assert r.code == 2 and "16x16 but --mask is 20x16" in r.stderr


def test_the_embedded_model_pipes_a_png_on_a_fresh_registry(home):
    r = run_cli(["sample", "--class", "3", "--seed", "0", "-o", "-"])
    assert r.code == 0, r.stderr
    image = png_array(r.stdout_bytes)
    assert image.shape == (28, 28) and image.mean() < 100  # a white digit on black, like MNIST
    import io

    assert read_metadata(io.BytesIO(r.stdout_bytes))["model"] == "mnist"
    listing = run_cli(["models", "list", "--json"]).json()
    assert {m["name"] for m in listing if m["source"] == "builtin"} >= {"mnist"}


@pytest.mark.realdata
def test_every_class_of_the_embedded_model_reads_as_itself(home):
    from conftest import mnist_dir

    r = run_cli(["eval", "-n", "20", "--data-dir", str(mnist_dir()), "--device", "cpu", "--json"])
    assert r.code == 0, r.stderr
    report = r.json()
    assert report["model"] == "mnist" and report["n"] == 200
    assert report["min_class_accuracy"] >= 0.9, [(c["label"], c["accuracy"]) for c in report["classes"]]
