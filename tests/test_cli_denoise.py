"""`diffcli denoise`: blur with no model, one-step and iterative through the engine, the compare panel."""

import numpy as np
import pytest
from helpers import make_tiny_model, png_array, run_cli, write_image


@pytest.fixture
def noisy_png(tmp_path):
    return write_image(tmp_path / "noisy.png", (20, 20), mode="L")


def test_blur_works_with_an_empty_registry(noisy_png, no_builtin, tmp_path):
    r = run_cli(["denoise", str(noisy_png), "--method", "blur", "--noisy", "-t", "500", "-o", str(tmp_path / "b.png")])
    assert r.code == 0, r.stderr
    before, after = png_array(noisy_png).astype(float), png_array(tmp_path / "b.png").astype(float)
    assert after.shape == before.shape and after.std() < before.std()  # blurring smooths


def test_blur_reports_scores_against_the_clean_input(tmp_path, no_builtin):
    r = run_cli(
        [
            "denoise",
            "builtin:house",
            "--method",
            "blur",
            "-t",
            "300",
            "--seed",
            "1",
            "--json",
            "-o",
            str(tmp_path / "x.png"),
        ]
    )
    scores = r.json()["scores"]
    assert r.code == 0 and scores["blur"]["psnr"] > scores["noisy"]["psnr"]


def test_model_methods_without_a_model_say_what_to_do(noisy_png, no_builtin):
    r = run_cli(["denoise", str(noisy_png), "--method", "onestep"])
    assert r.code == 1 and "diffcli train" in r.stderr and "diffcli models" in r.stderr


@pytest.mark.parametrize("method", ["onestep", "iterative"])
def test_model_methods_run_on_a_tiny_model(home, tmp_path, method):
    make_tiny_model(home)
    out = tmp_path / f"{method}.png"
    command = f"denoise builtin:digit --model tiny --method {method} -t 30 --seed 0 --device cpu -o".split()
    r = run_cli([*command, str(out)])
    assert r.code == 0, r.stderr
    assert png_array(out).shape == (16, 16)  # the model's size, with a notice about resizing
    assert "resized builtin:digit from 28x28 to 16x16" in r.stderr
    again = tmp_path / "again.png"
    assert run_cli([*command, str(again)]).code == 0
    assert np.array_equal(png_array(out), png_array(again))


def test_compare_panel_has_five_labelled_tiles(home, tmp_path):
    make_tiny_model(home, cond="time")
    out = tmp_path / "cmp.png"
    r = run_cli(
        [
            "denoise",
            "builtin:digit",
            "--model",
            "tiny",
            "--compare",
            "-t",
            "25",
            "--stride",
            "5",
            "--kernel",
            "3",
            "--seed",
            "2",
            "-o",
            str(out),
            "--json",
        ]
    )
    assert r.code == 0, r.stderr
    assert set(r.json()["scores"]) == {"noisy", "iterative", "onestep", "blur"}
    panel = png_array(out)
    assert panel.shape[1] > 5 * 96  # five upscaled tiles side by side


def test_single_step_denoiser_sweep(home, tmp_path):
    make_tiny_model(home, name="b1", cond="none", objective="denoise")
    out = tmp_path / "sweep.png"
    r = run_cli(
        [
            "denoise",
            "builtin:digit",
            "--model",
            "b1",
            "--method",
            "onestep",
            "--noise-sigma",
            "0",
            "--noise-sigma",
            "0.5",
            "--noise-sigma",
            "1.0",
            "--seed",
            "0",
            "-o",
            str(out),
            "--json",
        ]
    )
    assert r.code == 0, r.stderr
    assert list(r.json()["scores"]) == ["0", "0.5", "1"]


@pytest.mark.parametrize(
    "args,code,message",
    [
        (["--method", "sharpen"], 2, "unknown method"),
        (["--method", "blur", "--kernel", "4"], 2, "odd"),
        (["--method", "blur", "--noisy"], 2, "--noisy needs -t"),
        (["--method", "blur", "--kernel", "41", "-t", "5"], 2, "too large"),
        (["--method", "iterative", "-t", "50"], 2, "outside [0, 50)"),
        (["--method", "iterative", "--steps", "0"], 2, "--steps must be between 1 and 100000"),
        (["--method", "iterative", "-t", "10", "--steps", "20"], 2, "more than"),
        (["--method", "iterative", "--class", "old man"], 2, "does not know 'old man'"),
        (["--method", "iterative", "--model", "nope"], 2, "no model named 'nope'"),
    ],
)
def test_bad_inputs(home, noisy_png, args, code, message):
    make_tiny_model(home)
    r = run_cli(
        ["denoise", str(noisy_png), "--model", "tiny", *args]
        if "--model" not in args
        else ["denoise", str(noisy_png), *args]
    )
    assert r.code == code, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr
