"""The registry against hostile or damaged input: configs, imported folders and zips, weights,
checkpoints, closed pipes and unusable registry folders. Each failure must be one line saying what is
wrong and what to do, exit 1 or 2, and nothing lost."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import time
import zipfile
from dataclasses import fields
from pathlib import Path

import pytest
from helpers import make_tiny_model, run_cli

REPO = Path(__file__).resolve().parents[1]


# ----- helpers -------------------------------------------------------------------------------------


def one_line_error(result, code: int = 1) -> str:
    """The single error line of a failed run (and no internal error, no traceback)."""
    assert result.code == code, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("diffcli: error: ") and "internal error" not in lines[0], lines[0]
    return lines[0]


def load(name: str = "tiny"):
    """Load a model the way every command does (a one-step denoise of a built-in image)."""
    return run_cli(["denoise", "builtin:digit", "--model", name, "--method", "onestep", "-t", "5", "-o", "x.png"])


def config_of(folder: Path) -> dict:
    return json.loads((folder / "config.json").read_text())


def set_config(folder: Path, data: dict) -> None:
    (folder / "config.json").write_text(json.dumps(data))


def nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"x": value}
    return value


def subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def staging_left(home: Path) -> list[str]:
    models = home / "models"
    return sorted(p.name for p in models.iterdir() if p.name.startswith(".")) if models.is_dir() else []


# ----- config.json: one schema, field paths, broken models listed and removable ------------------------


def _conditioning_class(c):
    c["conditioning"] = "class"


def _format_text(c):
    c["format"] = "x"


def _image_number(c):
    c["image"] = 5


def _schedule_list(c):
    c["schedule"] = [1, 2]


def _timesteps_zero(c):
    c["schedule"]["timesteps"] = 0


def _width_huge(c):
    c["architecture"]["width"] = 200000


def _deep_training(c):
    c["training"] = nested(100)


def _size_text(c):
    c["image"]["size"] = "x"


def _range_nan(c):
    c["image"]["range"] = [float("nan"), 1.0]


def _range_reversed(c):
    c["image"]["range"] = [1.0, -1.0]


def _labels_object(c):
    c["conditioning"]["labels"] = {"0": "zero"}


def _alias_out_of_range(c):
    c["conditioning"]["aliases"] = {"eleven": 11}


def _unknown_sampler(c):
    c["sampling"]["sampler"] = "magic"


def _steps_above_t(c):
    c["sampling"]["steps"] = 10_000


def _interval_reversed(c):
    c["sampling"]["guidance_interval"] = [0.7, 0.2]


def _interval_one_number(c):
    c["sampling"]["guidance_interval"] = [0.5]


def _no_schedule(c):
    del c["schedule"]


def _linear_without_betas(c):
    c["schedule"] = {"kind": "linear", "timesteps": 50}


def _no_conditioning(c):
    del c["conditioning"]


def _channels_many(c):
    c["image"]["channels"] = 64


def _unknown_field(c):
    c["image"]["sise"] = 16


def _patch_not_dividing(c):
    c["architecture"]["patch"] = 3


def _test_accuracy_text(c):
    c["metrics"] = {"test_accuracy": "high"}


def _noise_sigma_text(c):
    c["training"] = {"noise_sigma": "half"}


BROKEN_CONFIGS = {
    "conditioning-is-text": (_conditioning_class, "conditioning must be an object ({...}), got 'class'"),
    "format-is-text": (_format_text, "format must be 1, got 'x'"),
    "image-is-number": (_image_number, "image must be an object ({...}), got 5"),
    "schedule-is-list": (_schedule_list, "schedule must be an object ({...}), got a list"),
    "timesteps-zero": (_timesteps_zero, "schedule.timesteps must be a whole number from 1 to 100000, got 0"),
    "width-200000": (_width_huge, "architecture.width must be a whole number from 2 to 1024, got 200000"),
    "deep-nesting": (_deep_training, "nests deeper than 32 levels"),
    "size-is-text": (_size_text, "image.size must be a whole number from 1 to 4096, got 'x'"),
    "range-nan": (_range_nan, "image.range[0] must be a finite number, got nan"),
    "range-reversed": (_range_reversed, "image.range must be [low, high] with low < high"),
    "labels-object": (_labels_object, "conditioning.labels must be a list"),
    "alias-out-of-range": (_alias_out_of_range, "conditioning.aliases.eleven is class 11, but there are 10 labels"),
    "unknown-sampler": (
        _unknown_sampler,
        "sampling.sampler must be one of 'ddpm', 'ddim', 'heun', 'dpm++', got 'magic'",
    ),
    "steps-above-T": (_steps_above_t, "sampling.steps is 10000, more than the schedule's 50 timesteps"),
    "interval-reversed": (
        _interval_reversed,
        "sampling.guidance_interval is [0.7, 0.2]: its start must be below its end",
    ),
    "interval-one-number": (_interval_one_number, "sampling.guidance_interval must"),
    "no-schedule": (_no_schedule, "schedule is missing"),
    "linear-without-betas": (_linear_without_betas, "schedule.beta_start is missing"),
    "no-conditioning": (_no_conditioning, "conditioning is missing"),
    "64-channels": (_channels_many, "image.channels must be a whole number from 1 to 4, got 64"),
    "unknown-field": (_unknown_field, "image has an unknown field 'sise'"),
    "patch-not-dividing": (_patch_not_dividing, "architecture.patch 3 does not divide image.size 16"),
    "test-accuracy-text": (_test_accuracy_text, "metrics.test_accuracy must be a number from 0 to 1, got 'high'"),
    "noise-sigma-text": (_noise_sigma_text, "training.noise_sigma must be a number of at least 0, got 'half'"),
}


@pytest.mark.parametrize("case", list(BROKEN_CONFIGS))
def test_one_broken_config_is_listed_as_broken_and_the_rest_still_work(home, no_builtin, case):
    break_it, expected = BROKEN_CONFIGS[case]
    make_tiny_model(home, "good")
    bad = make_tiny_model(home, "bad")
    config = config_of(bad)
    break_it(config)
    set_config(bad, config)

    listed = run_cli(["models", "list", "--json"])
    assert listed.code == 0, listed.stderr
    rows = {row["name"]: row for row in listed.json()}
    assert rows["good"]["kind"] == "unet" and rows["bad"]["kind"] == "broken"
    assert expected in rows["bad"]["error"] and "config.json" in rows["bad"]["error"]
    assert "models rm bad" in rows["bad"]["hint"]

    table = run_cli(["models", "list"])
    assert table.code == 0 and "good" in table.stdout and "broken" in table.stdout
    assert expected in table.stderr  # the reason, on stderr beside the table

    doctor = run_cli(["doctor", "--json"])
    assert doctor.code == 0
    kinds = {m["name"]: m["kind"] for m in doctor.json()["registry"]["models"]}
    assert kinds == {"good": "unet/class", "bad": "broken"}

    assert expected in one_line_error(load("bad"))
    assert run_cli(["models", "rm", "bad", "--yes"]).code == 0
    assert [row["name"] for row in run_cli(["models", "list", "--json"]).json()] == ["good"]


def test_the_error_names_the_file_and_the_field_path(home, no_builtin):
    bad = make_tiny_model(home, "bad")
    config = config_of(bad)
    config["image"]["size"] = "x"
    set_config(bad, config)
    line = one_line_error(load("bad"))
    assert f"{bad / 'config.json'}: image.size must be a whole number from 1 to 4096, got 'x'" in line


def test_a_config_without_a_schedule_never_samples_with_a_default_one(home, no_builtin):
    folder = make_tiny_model(home, "tiny")
    config = config_of(folder)
    del config["schedule"]
    set_config(folder, config)
    line = one_line_error(run_cli(["sample", "--model", "tiny", "--seed", "0", "-n", "1", "-o", "x.png"]))
    assert "schedule is missing" in line
    assert not Path("x.png").exists()
    from diffcli.models.config import ModelConfig

    with pytest.raises(TypeError):  # in code too: no silent default schedule, image or conditioning
        ModelConfig(
            name="x",
            image={"channels": 1, "size": 8, "range": [-1, 1]},
            prediction="eps",
            conditioning={"type": "none"},
        )


def test_nesting_too_deep_for_the_json_parser_is_a_clear_error(home, no_builtin):
    bad = make_tiny_model(home, "bad")
    (bad / "config.json").write_text("[" * 200_000 + "]" * 200_000)
    rows = run_cli(["models", "list", "--json"]).json()
    assert rows[0]["kind"] == "broken" and "nests deeper than" in rows[0]["error"]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"\xff\xfe not utf-8", "is not UTF-8 text"),
        (b"[1, 2]", "does not hold a JSON object ({...}), it holds a list"),
        (b'{"name": ' + b"9" * 5000 + b"}", "is not valid JSON"),
        (b"{oops", "is not valid JSON"),
    ],
)
def test_unreadable_config_text(home, no_builtin, content, expected):
    bad = make_tiny_model(home, "bad")
    (bad / "config.json").write_bytes(content)
    rows = run_cli(["models", "list", "--json"]).json()
    assert rows[0]["kind"] == "broken" and expected in rows[0]["error"]


def test_an_oversized_config_is_refused_without_reading_it(home, no_builtin, monkeypatch):
    from diffcli.models import config as config_module

    make_tiny_model(home, "bad")
    monkeypatch.setattr(config_module, "MAX_CONFIG_BYTES", 100)
    rows = run_cli(["models", "list", "--json"]).json()
    assert rows[0]["kind"] == "broken" and "a model config is at most" in rows[0]["error"]


def test_a_config_that_is_a_folder_or_unreadable_shows_as_broken(home, no_builtin, monkeypatch):
    folder = make_tiny_model(home, "dir")
    (folder / "config.json").unlink()
    (folder / "config.json").mkdir()
    make_tiny_model(home, "locked")
    real_read_bytes = Path.read_bytes

    def read_bytes(self):
        if self.parent.name == "locked" and self.name == "config.json":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    rows = {row["name"]: row for row in run_cli(["models", "list", "--json"]).json()}
    assert rows["dir"]["kind"] == "broken" and "is not a file" in rows["dir"]["error"]
    assert (
        rows["locked"]["kind"] == "broken" and "cannot be read (permission denied)" in rows["locked"]["error"].lower()
    )


def test_builtin_and_project_written_configs_validate(home):
    from diffcli.models import pipeline_config as pc
    from diffcli.models.config import CONFIG, ModelConfig
    from diffcli.models.registry import BUILTIN_DIR

    builtins = sorted(BUILTIN_DIR.glob("*/config.json"))
    assert builtins
    for path in builtins:
        ModelConfig.read(path)
    config, _ = pc.build_config(
        "if", {"hub": "DeepFloyd/IF-I-XL-v1.0"}, {"hub": "DeepFloyd/IF-II-L-v1.0"}, dict(pc.IF_SCHEDULER), None
    )
    assert ModelConfig.from_dict(json.loads(config.to_json())) == config
    # One schema covers every field of ModelConfig, for every kind.
    names = {f.name for f in fields(ModelConfig)}
    for kind, record in CONFIG.options.items():
        assert set(record.fields) == names, kind


def test_schema_limits_cover_what_the_project_can_make():
    from diffcli.diffusion.samplers import SAMPLERS
    from diffcli.models import config
    from diffcli.training import recipe

    assert config.SAMPLERS == SAMPLERS
    assert config.MAX_TIMESTEPS >= recipe.MAX_TIMESTEPS
    assert all(config.MAX_WIDTH >= high for _, high in recipe.WIDTHS.values())


def test_an_invalid_config_is_never_written(home):
    from diffcli.errors import DiffcliError
    from diffcli.models.config import ModelConfig

    config = ModelConfig(
        name="x",
        architecture={"type": "unet"},
        image={"channels": 1, "size": 0, "range": [-1, 1]},
        schedule={"kind": "cosine", "timesteps": 10},
        prediction="eps",
        conditioning={"type": "none"},
    )
    with pytest.raises(DiffcliError, match="image.size must be a whole number from 1 to 4096, got 0"):
        config.to_json()


# ----- models import of a folder: regular files only, never links, staging always cleaned -------------


def _source_folder(home: Path, tmp_path: Path, name: str = "src") -> Path:
    """A model folder outside the registry (a copy of a tiny model)."""
    built = make_tiny_model(home, f"{name}-built")
    source = tmp_path / name
    source.mkdir()
    for file in ("config.json", "model.safetensors"):
        (source / file).write_bytes((built / file).read_bytes())
    config = config_of(source)
    config["name"] = name
    set_config(source, config)
    run_cli(["models", "rm", f"{name}-built", "--yes"])
    return source


def test_a_link_to_a_secret_file_is_refused_not_copied(home, no_builtin, tmp_path):
    source = _source_folder(home, tmp_path)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$secret")
    (source / "model.safetensors").unlink()
    (source / "model.safetensors").symlink_to(secret)
    line = one_line_error(run_cli(["models", "import", str(source)]))
    assert "model.safetensors is a symbolic link" in line and "regular files only" in line
    assert run_cli(["models", "list", "--json"]).json() == [] and staging_left(home) == []
    assert not any("secret" in p.read_text(errors="ignore") for p in home.rglob("*") if p.is_file())


def test_a_link_to_a_folder_and_a_loop_are_refused_at_once(home, no_builtin, tmp_path):
    source = _source_folder(home, tmp_path)
    (source / "etc").symlink_to("/etc")
    (source / "loop").symlink_to("..")
    started = time.monotonic()
    line = one_line_error(run_cli(["models", "import", str(source)]))
    assert "is a symbolic link" in line and time.monotonic() - started < 30
    assert staging_left(home) == [] and not (home / "models" / "src").exists()


@pytest.mark.parametrize("extra", ["notes.txt", "subfolder", "fifo"])
def test_unknown_files_are_refused_in_words(home, no_builtin, tmp_path, extra):
    source = _source_folder(home, tmp_path)
    path = source / extra
    if extra == "subfolder":
        path.mkdir()
    elif extra == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("hello")
    line = one_line_error(run_cli(["models", "import", str(source)]))
    assert f"{path} is a" in line and "not part of a model" in line and "config.json, model.safetensors" in line
    assert staging_left(home) == []


def test_a_clean_folder_imports_only_the_model_files(home, no_builtin, tmp_path):
    source = _source_folder(home, tmp_path)
    (source / ".DS_Store").write_text("x")
    (source / "train").mkdir()
    (source / "train" / "checkpoint.pt").write_bytes(b"not copied")
    (source / ".hidden-link").symlink_to("/etc")
    r = run_cli(["models", "import", str(source)])
    assert r.code == 0, r.stderr
    assert sorted(p.name for p in (home / "models" / "src").iterdir()) == ["config.json", "model.safetensors"]
    assert load("src").code == 0 and staging_left(home) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_the_staging_folder_is_removed_on_interrupts_and_bugs(home, no_builtin, tmp_path, monkeypatch, error):
    from diffcli.models import importing

    source = _source_folder(home, tmp_path)
    seen = []

    def failing_copy(reader, destination, limit, where):
        seen.append(destination)
        assert destination.parent.name.startswith("~stage-")
        raise error("stop")

    monkeypatch.setattr(importing, "_copy", failing_copy)
    r = run_cli(["models", "import", str(source)])
    assert seen and r.code in (1, 130)
    assert staging_left(home) == [] and not (home / "models" / "src").exists()


SIGTERM_SCRIPT = r"""
import sys, time
from pathlib import Path
from diffcli.models import importing

marker = Path(sys.argv[1])

def slow_copy(reader, destination, limit, where):
    marker.write_text(str(destination))
    time.sleep(300)

importing._copy = slow_copy
from diffcli.cli.app import main
main(["models", "import", sys.argv[2]])
"""


def test_sigterm_during_an_import_removes_the_staging_folder(home, no_builtin, tmp_path):
    source = _source_folder(home, tmp_path)
    marker = tmp_path / "copying"
    child = subprocess.Popen(
        [sys.executable, "-c", SIGTERM_SCRIPT, str(marker), str(source)],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), child.communicate(timeout=5)
        assert staging_left(home)  # the copy is under way, in a staging folder
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 143, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("diffcli: error: terminated (SIGTERM) while importing"), err
    assert staging_left(home) == [] and not (home / "models" / "src").exists()


def test_sigterm_handler_is_restored_after_an_import(home, no_builtin, tmp_path):
    source = _source_folder(home, tmp_path)
    before = signal.getsignal(signal.SIGTERM)
    assert run_cli(["models", "import", str(source)]).code == 0
    assert signal.getsignal(signal.SIGTERM) is before


# ----- models import of a zip: limits, streaming, safe names -----------------------------------------


def _exported_zip(home: Path, tmp_path: Path) -> Path:
    make_tiny_model(home, "z")
    path = Path(run_cli(["models", "export", "z", str(tmp_path / "z.zip")]).stdout.strip())
    assert run_cli(["models", "rm", "z", "--yes"]).code == 0
    return path


def _declare_size(path: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size that the zip's central directory declares for `member`."""
    _edit_central_directory(path, member, 24, "<I", size)


def _edit_central_directory(path: Path, member: str, field: int, form: str, value: int) -> None:
    """Overwrite one field of `member`'s central directory record (zipfile would not write these lies)."""
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    count, _, start = struct.unpack_from("<HII", data, end + 10)
    offset = start
    for _ in range(count):
        assert data[offset : offset + 4] == b"PK\x01\x02"
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, offset + 28)
        if data[offset + 46 : offset + 46 + name_length].decode() == member:
            struct.pack_into(form, data, offset + field, value)
            path.write_bytes(bytes(data))
            return
        offset += 46 + name_length + extra_length + comment_length
    raise AssertionError(f"{member} not in {path}")


def _zip_with(tmp_path: Path, home: Path, extra: dict[str, bytes], name: str = "evil.zip") -> Path:
    """An exported model's files under z/, plus `extra` entries."""
    source = _exported_zip(home, tmp_path)
    path = tmp_path / name
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as archive:
        for info in original.infolist():
            archive.writestr(info.filename, original.read(info))
        for entry, data in extra.items():
            archive.writestr(entry, data)
    return path


@pytest.mark.parametrize(
    "entry, expected",
    [
        ("../../x", "climbs out of its folder with '..'"),
        ("z/../../x", "climbs out of its folder with '..'"),
        ("/abs", "is an absolute path"),
        ("C:/windows", "is an absolute path"),
        ("z\\..\\x", "uses backslashes"),
        ("other/model.safetensors", "outside the model's folder z/"),
        ("z/notes.txt", "which is not part of a model"),
        ("z/deeper/model.safetensors", "which is not part of a model"),
    ],
)
def test_unsafe_zip_entries_are_refused_in_words(home, no_builtin, tmp_path, entry, expected):
    archive = _zip_with(tmp_path, home, {entry: b"data"})
    line = one_line_error(run_cli(["models", "import", str(archive)]))
    assert expected in line and repr(entry)[1:-1] in line
    assert staging_left(home) == [] and run_cli(["models", "list", "--json"]).json() == []
    assert not (tmp_path / "x").exists() and not Path("/abs").exists()


def test_a_symlink_entry_duplicate_entry_or_encrypted_entry_is_refused(home, no_builtin, tmp_path):
    link = zipfile.ZipInfo("z/model-raw.safetensors")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    source = _exported_zip(home, tmp_path)
    for name, change in (("link", "link"), ("dup", "dup"), ("enc", "enc")):
        path = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as archive:
            for info in original.infolist():
                archive.writestr(info, original.read(info))
            if change == "link":
                archive.writestr(link, "/etc/shadow")
            if change == "dup":
                with pytest.warns(UserWarning):
                    archive.writestr("z/config.json", original.read("z/config.json"))
        if change == "enc":
            _edit_central_directory(path, "z/model.safetensors", 8, "<H", 0x1)  # the "encrypted" flag
        line = one_line_error(run_cli(["models", "import", str(path)]))
        assert {"link": "as a symbolic link", "dup": "twice", "enc": "is encrypted"}[change] in line
        assert staging_left(home) == []


def test_a_zip_declaring_more_than_the_limit_is_refused_before_extracting(home, no_builtin, tmp_path, monkeypatch):
    from diffcli.models import importing

    archive = _zip_with(tmp_path, home, {})
    monkeypatch.setattr(importing, "MAX_IMPORT_BYTES", 10_000)
    monkeypatch.setattr(importing, "_copy", lambda *a, **k: pytest.fail("extraction started"))
    line = one_line_error(run_cli(["models", "import", str(archive)]))
    assert "more than the 9.8 KiB a diffcli model can have" in line and staging_left(home) == []


def test_the_default_limit_refuses_a_zip_bomb(home, no_builtin, tmp_path, monkeypatch):
    from diffcli.models import importing

    # A small zip whose model.safetensors declares 3 GiB (the central directory is edited: no need to
    # compress 3 GiB here); nothing is extracted.
    archive = _zip_with(tmp_path, home, {})
    _declare_size(archive, "z/model.safetensors", 3 * 1024**3)
    with zipfile.ZipFile(archive) as z:
        assert z.getinfo("z/model.safetensors").file_size == 3 * 1024**3
    monkeypatch.setattr(importing, "_copy", lambda *a, **k: pytest.fail("extraction started"))
    line = one_line_error(run_cli(["models", "import", str(archive)]))
    assert "holds 3.0 GiB of model files, more than the 2.0 GiB" in line and staging_left(home) == []


def test_a_member_larger_than_declared_stops_at_the_declared_size(home, no_builtin, tmp_path, monkeypatch):
    from diffcli.models import importing

    # Declared 1000 bytes, actually 5 MiB of zeros (a few KiB compressed): the copy stops at the
    # declared size, whatever the stream would still give.
    bomb = tmp_path / "bomb.zip"
    source = _exported_zip(home, tmp_path)
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("z/config.json", original.read("z/config.json"))
        archive.writestr("z/model.safetensors", b"\0" * (5 * 1024 * 1024))
    _declare_size(bomb, "z/model.safetensors", 1000)
    sizes = []
    real_copy = importing._copy

    def measured_copy(reader, destination, limit, where):
        try:
            return real_copy(reader, destination, limit, where)
        finally:
            if destination.name == "model.safetensors":
                sizes.append(destination.stat().st_size if destination.exists() else 0)

    monkeypatch.setattr(importing, "_copy", measured_copy)
    line = one_line_error(run_cli(["models", "import", str(bomb)]))
    assert "larger than it declared" in line or "damaged" in line
    assert sizes and max(sizes) <= 1000 and staging_left(home) == []


def test_zip_members_are_streamed_and_weights_never_read_whole(home, no_builtin, tmp_path, monkeypatch):
    archive = _exported_zip(home, tmp_path)
    monkeypatch.setattr(zipfile.ZipFile, "read", lambda *a, **k: pytest.fail("a whole member was read into memory"))
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(
        Path,
        "read_bytes",
        lambda self: pytest.fail("weights read whole") if self.suffix == ".safetensors" else real_read_bytes(self),
    )
    r = run_cli(["models", "import", str(archive), "--name", "streamed"])
    assert r.code == 0, r.stderr
    assert load("streamed").code == 0


def test_a_damaged_zip_is_one_line(home, no_builtin, tmp_path):
    archive = _exported_zip(home, tmp_path)
    data = archive.read_bytes()
    damaged = tmp_path / "damaged.zip"
    start = data.find(b"model.safetensors") + 200
    damaged.write_bytes(data[:start] + bytes(b ^ 0xFF for b in data[start : start + 2000]) + data[start + 2000 :])
    line = one_line_error(run_cli(["models", "import", str(damaged)]))
    assert "damaged" in line or "not a valid safetensors" in line
    assert staging_left(home) == []


# ----- a full disk or a read-only registry during import, rm and list --------------------------------


def test_a_full_disk_during_import_is_one_line_and_keeps_the_old_model(home, no_builtin, tmp_path, monkeypatch):
    from diffcli.models import importing

    source = _source_folder(home, tmp_path)
    assert run_cli(["models", "import", str(source)]).code == 0
    before = (home / "models" / "src" / "model.safetensors").read_bytes()

    def full_disk(reader, destination, limit, where):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(destination))

    monkeypatch.setattr(importing, "_copy", full_disk)
    line = one_line_error(run_cli(["models", "import", str(source), "--force"]))
    assert "no space left on device" in line and str(home / "models") in line and "free some space" in line
    assert (home / "models" / "src" / "model.safetensors").read_bytes() == before
    assert staging_left(home) == []


def make_read_only(home: Path, monkeypatch) -> None:
    """From now on every write under the registry fails with EROFS, as on a read-only mount."""

    def refuse(path) -> None:
        if str(os.fspath(path)).startswith(str(home)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))

    real_mkdir, real_open, real_replace, real_rename = os.mkdir, os.open, os.replace, os.rename

    def mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def replace(source, destination, *args, **kwargs):
        refuse(source)
        return real_replace(source, destination, *args, **kwargs)

    def rename(source, destination, *args, **kwargs):
        refuse(source)
        return real_rename(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "rename", rename)


def test_a_read_only_registry_lists_and_refuses_changes_in_one_line(home, no_builtin, tmp_path, monkeypatch):
    source = _source_folder(home, tmp_path, "other")
    make_tiny_model(home, "kept")
    make_read_only(home, monkeypatch)

    listed = run_cli(["models", "list", "--json"])
    assert listed.code == 0 and [row["name"] for row in listed.json()] == ["kept"]
    line = one_line_error(run_cli(["models", "import", str(source)]))
    assert "read-only file system" in line and str(home / "models") in line and "DIFFCLI_HOME" in line
    line = one_line_error(run_cli(["models", "rm", "kept", "--yes"]))
    assert "cannot remove model 'kept'" in line and "read-only file system" in line
    line = one_line_error(run_cli(["models", "default", "kept"]))
    assert "read-only file system" in line.lower()
    assert (home / "models" / "kept" / "model.safetensors").is_file()
    assert load("kept").code == 0


def test_an_unreadable_registry_is_one_line(home, no_builtin, monkeypatch):
    make_tiny_model(home, "a")
    real_iterdir = Path.iterdir

    def iterdir(self):
        if self == home / "models":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    line = one_line_error(run_cli(["models", "list"]))
    assert "cannot list the models" in line and "permission denied" in line and str(home / "models") in line


def test_diffcli_home_that_is_a_file(tmp_path, monkeypatch):
    home_file = tmp_path / "home-file"
    home_file.write_text("not a folder")
    monkeypatch.setenv("DIFFCLI_HOME", str(home_file))
    for args in (["models", "list"], ["models", "list", "--json"], ["sample", "-n", "1", "-o", "x.png"]):
        line = one_line_error(run_cli(args))
        assert f"DIFFCLI_HOME {home_file} is a file, not a folder" in line and "point DIFFCLI_HOME at a folder" in line
    doctor = run_cli(["doctor"])
    assert doctor.code == 0
    lines = [line for line in doctor.stdout.splitlines() if "is a file, not a folder" in line]
    assert len(lines) == 1 and lines[0].startswith("registry")
    assert "not created yet" not in doctor.stdout
    assert run_cli(["doctor", "--json"]).json()["registry"]["error"].startswith(f"DIFFCLI_HOME {home_file} is a file")
    line = one_line_error(run_cli(["models", "import", str(tmp_path)]))
    assert "is a file, not a folder" in line


# ----- weights: dtypes, NaN/inf, sizes checked before loading ---------------------------------------


def _rewrite_weights(folder: Path, change) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    key = next(k for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    state[key] = change(state[key])
    save_file(state, str(folder / "model.safetensors"))


@pytest.mark.parametrize("dtype", ["int64", "bool", "complex64"])
def test_weights_of_an_unexpected_dtype_are_refused(home, no_builtin, dtype):
    import torch

    folder = make_tiny_model(home)
    _rewrite_weights(folder, lambda t: t.to(getattr(torch, dtype)))
    line = one_line_error(load())
    assert (
        "unexpected type" in line
        and f"is {dtype}, float32 expected" in line
        and str(folder / "model.safetensors") in line
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_weights_holding_nan_or_inf_are_refused(home, no_builtin, value):
    folder = make_tiny_model(home)

    def poison(t):
        t = t.clone()
        t.view(-1)[0] = value
        return t

    _rewrite_weights(folder, poison)
    line = one_line_error(load())
    assert "holds NaN or infinite values" in line and "retrain" in line


def test_float16_weights_and_batchnorm_counters_still_load(home, no_builtin):
    import torch

    folder = make_tiny_model(home, "half")
    _rewrite_weights(folder, lambda t: t.half())
    assert load("half").code == 0
    course = make_tiny_model(home, "course", size=28, architecture={"type": "course", "width": 4})
    from safetensors.torch import load_file

    assert any(
        v.dtype == torch.int64 for v in load_file(str(course / "model.safetensors")).values()
    )  # BatchNorm counters
    assert load("course").code == 0


def test_weights_too_large_for_memory_are_refused_before_loading(home, no_builtin, monkeypatch):
    from diffcli.models import weights

    make_tiny_model(home)
    monkeypatch.setattr(weights, "available_memory", lambda: 1000)
    monkeypatch.setattr("safetensors.torch.load_file", lambda *a, **k: pytest.fail("loaded anyway"))
    line = one_line_error(load())
    assert "KiB of weights, more than the 1000 bytes of memory available" in line


def _safetensors(header: dict, data: bytes = b"", header_length: int | None = None) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if header_length is None else header_length) + raw + data


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            _safetensors({"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 16]}}, b"\0" * 16),
            "claims 4835703278458516698824704 bytes",
        ),
        (
            _safetensors({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 2**60]}}, b"\0" * 16),
            "claims 16 bytes at",
        ),
        (_safetensors({}, b"", header_length=2**63), "its header claims 9223372036854775808 bytes"),
        (_safetensors({"w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\0" * 4), "has the shape [-1]"),
        (_safetensors({"w": {"dtype": "Q4", "shape": [1], "data_offsets": [0, 1]}}, b"\0"), "unsupported dtype 'Q4'"),
        (_safetensors({"w": "x"}), "lacks dtype, shape or data_offsets"),
        (b"\x01\x00", "shorter than its 8-byte header length"),
        (struct.pack("<Q", 5) + b"[1,2]", "its header is not a JSON object"),
    ],
    ids=("huge-shape huge-offsets huge-header negative-shape unknown-dtype no-fields short list-header").split(),
)
def test_a_safetensors_header_claiming_absurd_sizes_is_a_clear_error(home, no_builtin, content, expected):
    folder = make_tiny_model(home)
    (folder / "model.safetensors").write_bytes(content)
    line = one_line_error(load())
    assert "is not a valid safetensors file" in line and expected in line


# ----- models export: the usual file mode -----------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_export_writes_the_zip_with_the_mode_open_would_give(home, no_builtin, tmp_path, umask):
    make_tiny_model(home, "a")
    old = os.umask(umask)
    try:
        with open(tmp_path / "plain", "w"):
            pass
        r = run_cli(["models", "export", "a", str(tmp_path / "a.zip")])
    finally:
        os.umask(old)
    assert r.code == 0, r.stderr
    mode = stat.S_IMODE((tmp_path / "a.zip").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "plain").stat().st_mode) == 0o666 & ~umask
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_to_a_missing_folder_is_one_line(home, no_builtin, tmp_path):
    make_tiny_model(home, "a")
    line = one_line_error(run_cli(["models", "export", "a", str(tmp_path / "missing" / "a.zip")]))
    assert "does not exist" in line


# ----- checkpoints: validated like configs ------------------------------------------------------------


def _checkpoint(home: Path, state) -> Path:
    import torch

    path = home / "models" / "ck" / "train" / "checkpoint.pt"
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path


def _good_state():
    import torch

    return {
        "format": 1, "settings": {"dataset": "glyphs"}, "network": {"w": torch.zeros(2)}, "ema": None,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}, "rng": torch.zeros(4, dtype=torch.uint8),
        "step": 3, "epoch": 0, "position": 3, "history": [{"step": 1, "epoch": 1, "train_loss": 0.5}],
    }  # fmt: skip


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda s: {"format": 1}, "settings is missing"),
        (lambda s: {**s, "network": None}, "network must be an object"),
        (lambda s: {**s, "network": {"w": 3}}, "network.w must be a tensor, got 3"),
        (lambda s: {**s, "rng": s["rng"].float()}, "rng must be a tensor of uint8, got a tensor of float32"),
        (lambda s: {**s, "step": "x"}, "step must be a whole number"),
        (lambda s: {**s, "step": -1}, "step must be a whole number"),
        (lambda s: {**s, "optimizer": []}, "optimizer must be an object"),
        (lambda s: {**s, "history": [{"step": 1}]}, "history[0].epoch is missing"),
        (lambda s: {**s, "settings": {"sample_epochs": 5}}, "settings.sample_epochs must be a list"),
    ],
    ids=(
        "format-only network-null network-number rng-float step-text step-negative "
        "optimizer-list history-entry settings-type"
    ).split(),
)
def test_an_incomplete_checkpoint_is_one_line_naming_the_file(home, no_builtin, change, expected):
    import torch

    from diffcli.training.checkpoint import load_checkpoint

    path = _checkpoint(home, _good_state())
    assert load_checkpoint(path, "ok")["step"] == 3  # the complete state passes
    torch.save(change(_good_state()), path)
    line = one_line_error(run_cli(["train", "--resume", "--name", "ck"]))
    assert (
        f"checkpoint {path} is incomplete or damaged" in line and expected in line and "start over with --force" in line
    )


# ----- a closed stdout is not an error ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["models", "list"],
        ["models", "list", "--json"],
        ["models", "path"],
        ["models", "default"],
        ["doctor", "--json"],
        ["noise", "builtin:digit", "-t", "10", "--seed", "0", "-o", "-"],
    ],
    ids=lambda a: " ".join(a[:3]),
)
def test_a_reader_that_goes_away_is_not_an_error(home, args):
    make_tiny_model(home, "a")
    child = subprocess.Popen(
        [sys.executable, "-m", "diffcli", *args],
        env=subprocess_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    child.stdout.close()  # `| true`: nobody reads, before the command writes anything
    err = child.stderr.read().decode()
    child.wait(timeout=120)
    assert child.returncode == 0, err
    assert "error" not in err and "Exception" not in err and "Traceback" not in err, err
