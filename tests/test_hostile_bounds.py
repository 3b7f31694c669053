"""Hostile sizes and types: every allocation is sized before it happens and refused in one line past the
memory limit (DIFFCLI_MEMORY_LIMIT makes it small here, so nothing large is ever allocated); image
readers' limits name the file; the Python API refuses wrong types in one line; what can fail late is
checked first."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import make_tiny_model, png_array, run_cli
from PIL import Image

NOISE = ["noise", "-t", "5", "--seed", "0"]


def one_line(result, code: int = 1) -> str:
    """The single error line of a failed run (no traceback, no internal error)."""
    assert result.code == code, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "internal error" not in lines[0] and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def png_with_chunk(kind: bytes, data: bytes) -> bytes:
    """An 8x8 grey PNG carrying one extra chunk right after its header."""
    buffer = io.BytesIO()
    Image.new("L", (8, 8)).save(buffer, "PNG")
    png = buffer.getvalue()
    chunk = struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return png[:33] + chunk + png[33:]  # the signature (8) and IHDR (25) first


# ----- allocations sized first --------------------------------------------------------------------------
def test_the_memory_limit_is_half_the_machine_or_the_variable(monkeypatch):
    from diffcli import checks

    monkeypatch.delenv(checks.MEMORY_LIMIT_ENV, raising=False)
    assert checks.memory_limit() == int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") * 0.5)
    monkeypatch.setenv(checks.MEMORY_LIMIT_ENV, "64M")
    assert checks.memory_limit() == 64 * 2**20
    assert checks.rows_that_fit(256, 2**20) == 64 and checks.rows_that_fit(256, 2**30) == 1
    monkeypatch.setenv(checks.MEMORY_LIMIT_ENV, "lots")
    with pytest.raises(checks.UsageError, match="DIFFCLI_MEMORY_LIMIT='lots' is not a size"):
        checks.memory_limit()


def test_a_huge_schedule_is_refused_at_once():
    line = one_line(run_cli([*NOISE, "builtin:digit", "--timesteps", "1000000000"]), code=2)
    assert "--timesteps must be between 1 and 100000, got 1000000000" in line


def test_an_image_is_sized_from_its_header_before_it_is_decoded(monkeypatch, tmp_path):
    from PIL import ImageFile

    Image.new("RGBA", (300, 300)).save(tmp_path / "big.png")
    monkeypatch.setenv("DIFFCLI_MEMORY_LIMIT", "1M")
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded anyway"))
    line = one_line(run_cli([*NOISE, str(tmp_path / "big.png")]))
    assert f"reading {tmp_path / 'big.png'} (300x300) needs about 4.12 MiB of memory, over the 1 MiB limit" in line
    assert "downscale it first" in line and "DIFFCLI_MEMORY_LIMIT" in line


def test_noising_to_many_timesteps_is_sized_before_it_runs(monkeypatch):
    monkeypatch.setenv("DIFFCLI_MEMORY_LIMIT", "1M")
    ts = [str(t) for t in range(0, 1000, 5)]
    args = [a for t in ts for a in ("-t", t)]
    line = one_line(run_cli(["noise", "builtin:digit", "--seed", "0", *args, "-o", "x.png"]))
    assert "noising a " in line and "to 200 timesteps needs about" in line and "fewer timesteps" in line


def test_stdin_is_read_with_a_cap(monkeypatch):
    from diffcli.io import images

    monkeypatch.setattr(images, "MAX_INPUT_BYTES", 1000)
    line = one_line(run_cli([*NOISE, "-"], stdin=b"\0" * 5000))
    assert "stdin holds more than 1000 B, more than an image may be" in line


def _edit_config(folder: Path, edit) -> None:
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_huge_network_in_config_is_refused_from_the_weights_header_before_it_is_built(home, no_builtin, monkeypatch):
    """width 1024, eight levels: about 1 TiB of parameters if built; the tiny weights' header says otherwise."""
    folder = make_tiny_model(home)
    _edit_config(folder, lambda c: c["architecture"].update(width=1024, mults=[1, 2, 4, 8, 16, 16, 16, 16], blocks=4))
    monkeypatch.setattr("diffcli.models.backends.unet.build_network", lambda *a: pytest.fail("built anyway"))
    line = one_line(run_cli(["sample", "-m", "tiny", "-c", "3", "-o", "x.png"]))
    assert "weights in" in line and "do not fit the architecture in config.json" in line


def test_weights_that_fit_a_network_too_large_for_memory_are_refused_before_reading(home, no_builtin, monkeypatch):
    from diffcli.models import networks, weights
    from diffcli.models.config import ModelConfig

    folder = make_tiny_model(home)
    planned = networks.planned_shapes(ModelConfig.read(folder / "config.json"))
    monkeypatch.setenv("DIFFCLI_MEMORY_LIMIT", "10K")
    monkeypatch.setattr("safetensors.torch.load_file", lambda *a, **k: pytest.fail("read anyway"))
    with pytest.raises(weights.DiffcliError, match=r"model 'tiny': loading its network needs about .* over the 10 KiB"):
        weights.read_weights(folder / "model.safetensors", "model 'tiny'", planned)


def test_an_image_size_the_weights_were_not_made_for_is_refused_before_sampling(home, no_builtin, monkeypatch):
    """image.size 4096 on 16 px weights: convolutions take any size, so only the size tells."""
    folder = make_tiny_model(home)
    _edit_config(folder, lambda c: c["image"].update(size=4096))
    monkeypatch.setenv("DIFFCLI_MEMORY_LIMIT", "1G")
    line = one_line(run_cli(["sample", "-m", "tiny", "-c", "3", "-o", "x.png"]))
    assert "model 'tiny': one 4096x4096 image needs about" in line and "over the 1 GiB limit" in line
    assert "image.size is too large" in line


def test_generation_batches_shrink_to_the_memory_limit(home, no_builtin, monkeypatch):
    from diffcli.generation import batches

    make_tiny_model(home, timesteps=4)
    seen = []
    real = batches.generate

    def counting(model, terms, seeds, *args, **kwargs):
        seen.append(len(seeds))
        return real(model, terms, seeds, *args, **kwargs)

    monkeypatch.setattr(batches, "generate", counting)
    first = run_cli(["sample", "-m", "tiny", "-c", "3", "-n", "6", "--seed", "0", "-o", "a.png", "-q"])
    monkeypatch.setenv("DIFFCLI_MEMORY_LIMIT", "2304K")  # the 16 px tiny model: 576 KiB a row (4 network images)
    second = run_cli(["sample", "-m", "tiny", "-c", "3", "-n", "6", "--seed", "0", "-o", "b.png", "-q"])
    assert first.code == second.code == 0, second.stderr
    assert seen == [6, 4, 2]
    assert np.array_equal(png_array(Path("a.png")), png_array(Path("b.png")))  # the same seeds, the same pixels


# ----- readers' limits, one line naming the file --------------------------------------------------------
def test_a_compressed_text_bomb_is_one_line_naming_the_file(tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_with_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * (8 * 2**20), 9)))
    line = one_line(run_cli([*NOISE, str(bomb)]))
    assert f"{bomb} carries more text metadata than an image reader accepts" in line


def test_a_text_chunk_past_pillows_memory_limit_is_one_line(tmp_path, monkeypatch):
    from PIL import PngImagePlugin

    monkeypatch.setattr(PngImagePlugin, "MAX_TEXT_MEMORY", 1000)  # Pillow's 64 MB limit, made small
    big = tmp_path / "text.png"
    big.write_bytes(png_with_chunk(b"tEXt", b"k\0" + b"a" * 5000))
    line = one_line(run_cli([*NOISE, str(big)]))
    assert f"{big} carries more text metadata" in line and "MAX_TEXT_MEMORY" in line


def test_a_text_bomb_in_a_training_folder_names_the_file(tmp_path):
    folder = tmp_path / "cats"
    (folder / "a").mkdir(parents=True)
    Image.new("L", (8, 8)).save(folder / "a" / "good.png")
    (folder / "a" / "bomb.png").write_bytes(png_with_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * (8 * 2**20), 9)))
    line = one_line(run_cli(["train", "--dataset", f"folder:{folder}", "--epochs", "1", "--name", "cats"]))
    assert "bomb.png carries more text metadata" in line


def test_a_float_image_of_nan_is_refused_as_arrays_are(tmp_path):
    Image.fromarray(np.full((8, 8), np.nan, np.float32), mode="F").save(tmp_path / "nan.tif")
    line = one_line(run_cli([*NOISE, str(tmp_path / "nan.tif"), "-o", "x.png"]))
    assert "nan.tif holds NaN or infinite values; pass finite pixels in [0, 1]" in line
    assert not Path("x.png").exists()


def test_eight_bit_pixels_are_what_float64_made():
    """The float32 conversion gives the float64 one's values for every 8-bit level."""
    from diffcli.io.images import to_pixels

    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = np.clip(levels.astype(np.float64) / 255.0, 0.0, 1.0).astype(np.float32)[None]
    assert np.array_equal(to_pixels(Image.fromarray(levels)), expected)


# ----- the Python API's doors ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "call, words",
    [
        (lambda d: d.evaluate(5), "`model` must be a model name, a diffcli.Model or None (the default), got 5"),
        (lambda d: d.denoise("builtin:digit", model={}), "`model` must be a model name, a diffcli.Model or None"),
        (lambda d: d.train(5), "`name` must be text, got 5 (int)"),
        (lambda d: d.train(dataset=["glyphs"]), "`dataset` must be text, got ['glyphs'] (list)"),
        (lambda d: d.train(dataset="glyphs", ema="no"), "`ema` must be True or False, got 'no' (str)"),
        (lambda d: d.import_model(None), "`source` must be a path, got None"),
        (lambda d: d.export_model("good", None), "`destination` must be a path, got None"),
        (lambda d: d.show_model(None), "`name` must be text, got None"),
        (lambda d: d.set_default_model(3), "`name` must be text, got 3 (int)"),
        (lambda d: d.load(7), "`name` must be text, got 7 (int)"),
        (lambda d: d.noise("builtin:digit", t=range(10**9)), "a list of 1000000000 values is too long; give at most"),
        (lambda d: d.noise("builtin:digit", t=5, seed=np.bool_(True)), "`seed` must be a whole number"),
    ],
)
def test_a_wrong_type_at_the_python_api_is_one_usage_error(call, words):
    import diffcli
    from diffcli.errors import UsageError

    with pytest.raises(UsageError) as caught:
        call(diffcli)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_remove_model_of_none_is_refused_and_removes_nothing(home):
    import diffcli
    from diffcli.errors import UsageError

    make_tiny_model(home, "kept")
    diffcli.set_default_model("kept")
    with pytest.raises(UsageError, match="`name` must be text, got None"):
        diffcli.remove_model(None)
    assert diffcli.default_model() == "kept" and sorted(p.name for p in (home / "models").iterdir()) == ["kept"]


def test_numpy_numbers_are_numbers_at_every_door(home, no_builtin):
    import diffcli

    make_tiny_model(home, timesteps=4)
    model = diffcli.load("tiny")
    images = model.sample(classes=np.int64(3), n=np.int64(2), steps=np.int32(2), guidance=np.float32(2.0))
    assert len(images.images) == 2
    noisy = diffcli.noise("builtin:digit", t=np.array([5, 10]), timesteps=np.int16(100), seed=np.uint8(1))
    assert noisy.summary["timesteps"] == [5, 10] and type(noisy.summary["timesteps"][0]) is int


# ----- one set of bounds ---------------------------------------------------------------------------------
def test_the_config_schema_reads_the_same_bounds_as_the_cli():
    from diffcli import checks
    from diffcli.models import config
    from diffcli.schema import Float, Int

    sampling = config.SAMPLING.fields
    assert sampling["guidance"].spec == Float(checks.GUIDANCE.low, checks.GUIDANCE.high)
    assert sampling["steps"].spec == Int(1, checks.STEPS.high) and sampling["eta"].spec == Float(0.0, 1.0)
    assert config.IMAGE.fields["size"].spec == Int(1, checks.IMAGE_SIZE.high)
    assert config.SCHEDULE.fields["timesteps"].spec == Int(1, checks.TIMESTEPS.high)


@pytest.mark.parametrize(
    "command",
    [
        ["sample", "-c", "3", "-g", "1e308", "-o", "x.png"],
        ["hybrid", "1", "7", "-g", "1e308", "-o", "x.png"],
        ["anagram", "6", "9", "-g", "1e308", "-o", "x.png"],
        ["eval", "-n", "1", "-g", "1e308"],
        ["denoise", "builtin:digit", "--guidance", "1e308", "-o", "x.png"],
        ["train", "--dataset", "glyphs", "--guidance", "1e308"],
    ],
)
def test_a_guidance_that_overflows_is_refused_at_every_command(command):
    """-g 1e308 made black images with exit 0 (the guided estimate overflows); config.json caps it at 100."""
    line = one_line(run_cli(command), code=2)
    assert "--guidance must be in [0, 100], got 1e+308" in line and not Path("x.png").exists()


# ----- late failures checked first ----------------------------------------------------------------------
def test_an_output_name_too_long_for_its_temporary_file_is_refused_before_the_work(monkeypatch):
    from diffcli.jobs import noise

    monkeypatch.setattr(noise, "gaussian_noise", lambda *a: pytest.fail("worked anyway"), raising=False)
    name = "a" * 245 + ".png"  # fits a 255-byte name, not ".NAME.PID.RANDOM.tmp"
    line = one_line(run_cli([*NOISE, "builtin:digit", "-o", name]))
    assert "is too long a file name; use a name of at most" in line and not Path(name).exists()


def test_eval_on_a_read_only_registry_refuses_before_training_its_classifier(home, no_builtin, monkeypatch):
    from diffcli.scoring import classifier

    make_tiny_model(home, timesteps=4)  # dataset glyphs: no shipped classifier, so eval would train one
    monkeypatch.setattr(classifier, "train_for_dataset", lambda *a, **k: pytest.fail("trained anyway"))
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(path).startswith(str(home)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    line = one_line(run_cli(["eval", "-m", "tiny", "-n", "1", "--device", "cpu"]))
    assert "cannot write the scoring classifier 'glyphs-classifier' into the registry" in line
    assert "read-only file system" in line.lower()
