"""Hostile training: --force never loses a model to an early failure, one writer per model, a home that
is a file. Each case: one line, and the model that was there is still there, byte for byte."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import run_cli

TINY = ("--dataset glyphs --limit 32 --batch-size 16 --width 8 --timesteps 10 --device cpu --seed 0 -q").split()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def good(home: Path) -> Path:
    assert run_cli(["train", *TINY, "--epochs", "1", "--name", "good"]).code == 0
    return home / "models" / "good"


@pytest.mark.parametrize(
    "args,code,words",
    [
        (["--data-dir", "/nonexistent", "--dataset", "mnist"], 1, "mnist"),
        (["--width", "7"], 2, "--width 7"),
        (["--width", "0"], 2, "--width must be between"),
        (["--lr", "nan"], 2, "--lr must be a finite number"),
        (["--guidance", "nan"], 2, "--guidance must be a finite number"),
        (["--dataset", "folder:/nonexistent"], 1, "nonexistent"),
    ],
)
def test_force_keeps_the_old_model_when_the_new_run_fails_early(good, home, args, code, words):
    before = _snapshot(good)
    r = run_cli(["train", *TINY, "--epochs", "1", "--name", "good", "--force", *args])
    assert (
        r.code == code and words in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    ), r.stderr
    assert _snapshot(good) == before
    assert not [p for p in (home / "models").iterdir() if p.name.startswith(".")], "a staging folder was left behind"


def test_force_replaces_the_model_once_the_new_run_has_saved(good, home):
    before = _snapshot(good)
    r = run_cli(["train", *TINY, "--epochs", "1", "--name", "good", "--force", "--seed", "1"])
    assert r.code == 0, r.stderr
    after = _snapshot(good)
    assert after.keys() == before.keys() and after["model.safetensors"] != before["model.safetensors"]
    assert json.loads(after["config.json"])["training"]["seed"] == 1
    assert not [p for p in (home / "models").iterdir() if p.name.startswith(".")]


def test_a_fresh_run_that_fails_leaves_nothing_behind(home):
    r = run_cli(["train", *TINY, "--name", "never", "--dataset", "mnist", "--data-dir", "/nonexistent"])
    assert r.code == 1 and not (home / "models" / "never").exists()


def test_a_second_run_on_the_same_model_is_refused_naming_the_pid(home):
    from holders import holding_lock

    with holding_lock(home, "c") as pid:  # another process holds it, as a first `train --name c` would
        r = run_cli(["train", *TINY, "--epochs", "1", "--name", "c"])
    assert r.code == 1 and f"process {pid}" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "training it" in r.stderr
    assert not (home / "models" / "c").exists()
    assert run_cli(["train", *TINY, "--epochs", "1", "--name", "c"]).code == 0, "the lock was released"


def test_the_owner_record_of_a_dead_process_does_not_block(home):
    import socket

    record = home / "locks" / "s.owner.json"
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"pid": 4_000_000, "host": socket.gethostname(), "since": 0, "doing": "training it"}))
    (home / "locks" / "s.lock").write_text("")  # the lock file of a run that was killed: the OS released it
    r = run_cli(["train", *TINY, "--epochs", "1", "--name", "s"])
    assert r.code == 0, r.stderr
    assert not record.exists()


def test_a_home_that_is_a_file_is_one_line(tmp_path, monkeypatch):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("DIFFCLI_HOME", str(home))
    r = run_cli(["train", *TINY, "--epochs", "1", "--name", "x"])
    assert (
        r.code == 1
        and "Traceback" not in r.stderr
        and "internal error" not in r.stderr
        and len(r.stderr.strip().splitlines()) == 1
    ), r.stderr
    assert str(home) in r.stderr


def test_what_a_killed_run_left_is_tidied_by_the_next_run(good, home):
    """kill -9 mid-run leaves a staging folder; mid-swap, the old model aside: the next run tidies both."""
    models = home / "models"
    dead = 4_000_000
    (models / f".staging-x-{dead}" / "train").mkdir(parents=True)
    before = _snapshot(good)
    os.rename(good, models / f".replaced-good-{dead}")  # the swap moved the old model aside, then died
    r = run_cli(["train", *TINY, "--epochs", "1", "--name", "other"])
    assert r.code == 0, r.stderr
    assert _snapshot(good) == before, "the model moved aside is back"
    assert not [p.name for p in models.iterdir() if p.name.startswith(".")]
