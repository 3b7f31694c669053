"""`diffcli noise`: pipelines, strips, determinism, and its bad inputs."""

import numpy as np
import pytest
from helpers import png_array, run_cli, write_image

from diffcli.io.images import read_metadata


@pytest.fixture
def photo(tmp_path):
    return write_image(tmp_path / "photo.png", (24, 16))


def test_stdin_to_stdout_pipeline_is_deterministic(photo):
    data = photo.read_bytes()
    a = run_cli(["noise", "-", "-t", "500", "--seed", "1"], stdin=data)
    b = run_cli(["noise", "-", "-t", "500", "--seed", "1"], stdin=data)
    c = run_cli(["noise", "-", "-t", "500", "--seed", "2"], stdin=data)
    assert a.code == 0, a.stderr
    assert a.stdout_bytes.startswith(b"\x89PNG") and a.stdout_bytes == b.stdout_bytes
    assert not np.array_equal(png_array(a.stdout_bytes), png_array(c.stdout_bytes))
    assert png_array(a.stdout_bytes).shape == (16, 24, 3)


def test_noise_grows_with_t(photo, tmp_path):
    original = png_array(photo).astype(float)
    errors = []
    for t in (0, 250, 999):
        out = tmp_path / f"n{t}.png"
        assert run_cli(["noise", str(photo), "-t", str(t), "--seed", "0", "-o", str(out)]).code == 0
        errors.append(np.abs(png_array(out).astype(float) - original).mean())
    assert errors[0] < 2 < errors[1] < errors[2]


def test_several_t_give_a_labelled_strip_with_metadata(photo, tmp_path):
    out = tmp_path / "strip.png"
    r = run_cli(["noise", str(photo), "-t", "250", "-t", "500", "-t", "750", "--seed", "3", "-o", str(out)])
    assert r.code == 0 and "wrote" in r.stderr
    strip = png_array(out)
    assert strip.shape[1] > 4 * strip.shape[0] * 0.8  # four tiles side by side
    meta = read_metadata(out)
    assert meta["seed"] == 3 and meta["t"] == [250, 500, 750] and "diffcli noise" in meta["command"]


def test_out_dir_writes_one_file_per_t_and_prints_paths(photo, tmp_path):
    r = run_cli(["noise", str(photo), "-t", "10", "-t", "20", "--out-dir", str(tmp_path / "d"), "--seed", "0"])
    paths = r.stdout.split()
    assert (
        r.code == 0
        and len(paths) == 2
        and all(png_array(__import__("pathlib").Path(p)).shape == (16, 24, 3) for p in paths)
    )


def test_terminal_stdout_gets_a_file_not_bytes(photo, tmp_path):
    r = run_cli(["noise", str(photo), "-t", "5", "--seed", "0"], stdout_tty=True)
    assert r.code == 0 and r.stdout_bytes == b"" and (tmp_path / "work" / "noise.png").exists()
    r = run_cli(["noise", str(photo), "-t", "5", "-o", "-"], stdout_tty=True)
    assert r.code == 2 and "terminal" in r.stderr


def test_json_output(photo, tmp_path):
    r = run_cli(["noise", str(photo), "-t", "7", "--seed", "9", "--json", "-o", str(tmp_path / "j.png")])
    assert r.json() == {
        "outputs": [str(tmp_path / "j.png")],
        "seed": 9,
        "timesteps": [7],
        "schedule": "linear",
        "steps": 1000,
    }


@pytest.mark.parametrize(
    "args,stdin,code,message",
    [
        (["noise", "PHOTO", "-t", "1000"], None, 2, "outside [0, 1000)"),
        (["noise", "PHOTO", "-t", "-1"], None, 2, "outside"),
        (
            ["noise", "PHOTO", "-t", "5", "--steps", "0"],
            None,
            2,
            "--timesteps must be between 1 and 100000",
        ),  # --steps: the old spelling of --timesteps
        (["noise", "PHOTO", "-t", "5", "--timesteps", "0"], None, 2, "--timesteps must be between 1 and 100000"),
        (["noise", "-", "-t", "5"], b"", 1, "stdin is empty"),
        (["noise", "-", "-t", "5"], b"not an image at all", 1, "not an image"),
        (["noise", "missing.png", "-t", "5"], None, 1, "no such file"),
        (["noise", "PHOTO", "-t", "5", "--schedule", "square"], None, 2, "unknown schedule"),
        (["noise", "PHOTO"], None, 2, "-t"),
        (["noise", "PHOTO", "-t", "x"], None, 2, "Invalid value for '-t'"),
    ],
)
def test_bad_inputs(photo, args, stdin, code, message):
    r = run_cli([str(photo) if a == "PHOTO" else a for a in args], stdin=stdin)
    assert r.code == code, r.stderr
    assert message in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_interactive_stdin_is_refused():
    r = run_cli(["noise", "-", "-t", "5"], stdin=None)
    assert r.code == 2 and "nothing is piped" in r.stderr


def test_builtin_images():
    r = run_cli(["noise", "builtin:digit", "-t", "100", "--seed", "0"])
    assert r.code == 0 and png_array(r.stdout_bytes).shape == (28, 28)
    r = run_cli(["noise", "builtin:cat", "-t", "100"])
    assert r.code == 2 and "house" in r.stderr
