"""Hostile outputs: special files, links, stale temp files, outputs that cannot be written, and the checks
that must come before any work. Each case: one line, a non-zero exit where it fails, nothing replaced."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from pathlib import Path

import pytest
from helpers import png_array, run_cli

NOISE = ["noise", "builtin:digit", "-t", "300", "--seed", "0"]


def _one_line_error(r, code: int = 1) -> str:
    assert r.code == code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("diffcli: error:") and "Traceback" not in r.stderr, r.stderr
    assert "internal error" not in r.stderr
    return lines[0]


def test_a_symlink_is_written_through_and_stays_a_link(tmp_path):
    target = tmp_path / "real.png"
    target.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    assert run_cli([*NOISE, "-o", str(link)]).code == 0
    assert link.is_symlink() and png_array(target).shape == (28, 28)


def test_a_symlink_to_dev_null_leaves_the_device_alone(tmp_path):
    link = tmp_path / "to-null.png"
    link.symlink_to("/dev/null")
    assert run_cli([*NOISE, "-o", str(link)]).code == 0
    assert link.is_symlink() and stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_character_device_is_written_into_not_replaced(tmp_path):
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a private /dev/null
    except (PermissionError, OSError) as exc:
        pytest.skip(f"cannot make a device node here ({exc})")
    assert run_cli([*NOISE, "-o", str(device)]).code == 0
    assert stat.S_ISCHR(os.lstat(device).st_mode), "the device was replaced by a file"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_fifo_reader_gets_the_png(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    r = run_cli([*NOISE, "-o", str(fifo)])
    reader.join(timeout=30)
    assert r.code == 0 and not reader.is_alive()
    assert got and png_array(got[0]).shape == (28, 28) and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_proc_self_fd_is_written_into():
    read_end, write_end = os.pipe()
    try:
        r = run_cli([*NOISE, "-o", f"/proc/self/fd/{write_end}"])
        os.close(write_end)
        data = os.read(read_end, 1 << 20)
    finally:
        os.close(read_end)
    assert r.code == 0 and png_array(data).shape == (28, 28)


def test_a_stale_temp_file_of_a_dead_writer_is_cleaned_up(tmp_path):
    dead = 4_000_000  # above pid_max's default: no such process
    stale = tmp_path / f".x.png.{dead}.abc123.tmp"
    stale.write_bytes(b"half a png")
    alive = tmp_path / f".y.png.{os.getpid()}.abc123.tmp"  # a live writer's file is left alone
    alive.write_bytes(b"being written")
    assert run_cli([*NOISE, "-o", str(tmp_path / "out.png")]).code == 0
    assert not stale.exists() and alive.exists()


def test_outputs_are_checked_before_any_work(monkeypatch, tmp_path):
    from diffcli.jobs import generating as generate

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(generate, "load_generator", never)
    line = _one_line_error(run_cli(["sample", "--class", "3", "-o", str(tmp_path / "missing" / "x.png")]))
    assert "does not exist" in line
    line = _one_line_error(run_cli(["sample", "--class", "3", "-o", "-"], stdout_tty=True), code=2)
    assert "terminal" in line
    line = _one_line_error(run_cli(["anagram", "6", "9", "-o", "-", "--json"]), code=2)
    assert "--json" in line
    line = _one_line_error(run_cli(["hybrid", "1", "7", "-o", str(tmp_path)]), code=2)
    assert "is a folder" in line
    line = _one_line_error(run_cli(["sample", "-o", "a.png", "--out-dir", "d"]), code=2)
    assert "either -o or --out-dir" in line


@pytest.mark.parametrize(
    "args",
    [
        ["sample", "3", "-o", "{ro}/x.png"],
        ["anagram", "6", "9", "--out-dir", "{ro}/new/deeper"],  # nothing exists yet: its nearest folder decides
        ["hybrid", "1", "7", "--out-dir", "{ro}"],
        ["eval", "--task", "chain", "--plot", "{ro}/chain.png"],
    ],
)
def test_a_folder_that_takes_no_files_is_refused_before_any_work(monkeypatch, tmp_path, args):
    """A read-only or permission-less folder (probed by creating a file, since root passes permission
    checks): one line before the model loads, not after the images are made; nothing left behind."""
    from diffcli.jobs import generating as generate

    read_only = tmp_path / "ro"
    read_only.mkdir()
    real = tempfile.NamedTemporaryFile

    def refuse(*a, dir=None, **k):
        if dir is not None and Path(dir) == read_only:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*a, dir=dir, **k)

    def never(*a, **k):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    monkeypatch.setattr(generate, "load_generator", never)
    line = _one_line_error(run_cli([a.format(ro=read_only) for a in args]))
    assert f"no file can be created in {read_only} (Read-only file system)" in line
    assert list(read_only.iterdir()) == []


def test_no_output_named_on_a_terminal_probes_the_current_folder(monkeypatch, tmp_path):
    """Without -o on a terminal the image goes to a new file in the current folder: that folder is
    probed before the model loads."""
    from diffcli.jobs import generating as generate

    real = tempfile.NamedTemporaryFile

    def refuse(*a, dir=None, **k):
        if dir is not None and Path(dir).resolve() == tmp_path.resolve():
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return real(*a, dir=dir, **k)

    monkeypatch.setattr(tempfile, "NamedTemporaryFile", refuse)
    monkeypatch.setattr(generate, "load_generator", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(run_cli(["sample", "3"], stdout_tty=True))
    assert (
        "cannot write the image into the current folder: no file can be created in . (Permission denied)" in line
        and "-o" in line
    )


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder no file can be created in")
def test_proc_is_refused_before_any_work(monkeypatch):
    from diffcli.jobs import generating as generate

    monkeypatch.setattr(generate, "load_generator", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    assert "no file can be created in /proc" in _one_line_error(run_cli(["sample", "3", "--out-dir", "/proc/x"]))
    assert "no file can be created in /proc" in _one_line_error(run_cli(["sample", "3", "-o", "/proc/x.png"]))


def test_out_dir_that_is_a_file_is_refused_before_any_work(monkeypatch, tmp_path):
    from diffcli.jobs import generating as generate

    monkeypatch.setattr(generate, "load_generator", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    blocker = tmp_path / "file.png"
    blocker.write_bytes(b"x")
    assert "exists and is not a folder" in _one_line_error(run_cli(["sample", "3", "--out-dir", str(blocker)]), code=2)
    assert blocker.read_bytes() == b"x"
    monkeypatch.chdir(tmp_path)
    line = _one_line_error(run_cli(["sample", "3", "--out-dir", "-"]), code=2)
    assert (
        "--out-dir - would make a folder named '-'; write the image to stdout with -o -" in line
        and not (tmp_path / "-").exists()
    )


@pytest.mark.parametrize(
    "code,cause",
    [
        (errno.EROFS, "Read-only file system"),
        (errno.ENOSPC, "No space left on device"),
        (errno.EACCES, "Permission denied"),
    ],
)
def test_an_unwritable_folder_is_one_line_naming_the_path_and_the_cause(monkeypatch, tmp_path, code, cause):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    out = tmp_path / "x.png"
    line = _one_line_error(run_cli([*NOISE, "-o", str(out)]))
    assert str(out) in line and cause in line and not out.exists()


def test_out_dir_under_a_file_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _one_line_error(run_cli([*NOISE, "--out-dir", str(blocker / "sub")]))
    assert str(blocker / "sub") in line


def test_an_unexpected_os_error_is_still_one_line(monkeypatch):
    from diffcli.jobs import noise

    def broken(request):
        raise PermissionError(errno.EACCES, "Permission denied", "/some/where")

    monkeypatch.setattr(noise, "noise", broken)
    line = _one_line_error(run_cli(NOISE))
    assert "/some/where" in line and "Permission denied" in line
