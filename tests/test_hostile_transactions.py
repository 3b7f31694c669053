"""The registry's one transaction discipline under attack: a SIGKILL at every rename and unlink of every
operation that writes a model, a second writer of the same model, outputs aimed into the registry,
diverged runs, imports that unpack to more than they should, and what killed writers leave behind.

After each, every model is its old self or its new self (checked by hash), visible and loadable, and
nothing is left in the registry's models folder."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import make_tiny_model, run_cli
from holders import holding_lock

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "glyphs", "--limit", "16", "--batch-size", "16", "--width", "8", "--timesteps", "10",
        "--device", "cpu", "--seed", "1", "-q", "--epochs", "1"]  # fmt: skip


def digest(folder: Path) -> dict[str, str]:
    """The model folder's files by hash."""
    files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def hidden(home: Path) -> list[str]:
    models = home / "models"
    return sorted(p.name for p in models.iterdir() if p.name.startswith(".")) if models.is_dir() else []


def loads(name: str) -> None:
    from diffcli.models.backends import load_model

    load_model(name, device="cpu")


def one_line(result, code: int = 1) -> str:
    assert result.code == code, (result.code, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("diffcli: error: "), result.stderr
    assert ".txn" not in lines[0] and "~stage" not in lines[0], lines[0]
    return lines[0]


def exported(home: Path, name: str, tmp_path: Path, seed: int) -> Path:
    """A .zip of a tiny model built with `seed` (the built folder is removed again)."""
    make_tiny_model(home, f"{name}-src", seed=seed)
    assert run_cli(["models", "export", f"{name}-src", str(tmp_path / f"{name}-{seed}.zip")]).code == 0
    assert run_cli(["models", "rm", f"{name}-src", "--yes"]).code == 0
    return tmp_path / f"{name}-{seed}.zip"


# ----- a SIGKILL at every step ---------------------------------------------------------------------


def killed_at(step: int, args: list[str]) -> int:
    """Run `diffcli ARGS` in a child process (forked: no second start-up of torch) that SIGKILLs itself at
    the transaction's `step`-th rename/unlink/rmdir; returns -9 when the kill came, 0 when the operation
    finished first."""
    from diffcli.models import transaction

    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 98
        try:
            calls = [0]

            def kill_at(action: str, path: Path) -> None:
                calls[0] += 1
                if calls[0] == step:
                    os.kill(os.getpid(), signal.SIGKILL)

            transaction.HOOK = kill_at
            result = run_cli(args)
            code = result.code
            if code:
                os.write(2, result.stderr.encode())
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    assert code in (0, -signal.SIGKILL), f"step {step}: exit {code}"
    return code


def sweep(home: Path, args: list[str], name: str, old: dict | None, is_new, gone_ok: bool = False) -> int:
    """Kill `diffcli ARGS` at step 1, 2, ... until it completes; after each kill a fresh registry access
    must show model `name` as its old self (`old` digest; None: it did not exist) or as a new one
    (`is_new(folder)`), loadable, with nothing left behind. Returns how many steps were killed."""
    template = home.parent / "template"
    shutil.copytree(home, template, symlinks=True)
    assert run_cli(args).code == 0  # uncut once here: the forked children start with every module loaded
    seen = {"old": 0, "new": 0}
    step = 0
    while True:
        step += 1
        shutil.rmtree(home)
        shutil.copytree(template, home, symlinks=True)
        finished = killed_at(step, args) == 0
        listed = run_cli(["models", "list", "--json"])  # the next access: recovery runs here
        assert listed.code == 0, listed.stderr
        names = [row["name"] for row in listed.json()]
        folder = home / "models" / name
        if folder.exists():
            assert name in names
            state = "old" if old is not None and digest(folder) == old else "new"
            assert state == "old" or is_new(folder), f"step {step}: model {name!r} is neither its old nor its new self"
            loads(name)
            seen[state] += 1
        else:
            assert old is None or gone_ok, f"step {step}: model {name!r} disappeared"
            seen["new" if gone_ok else "old"] += 1
        assert hidden(home) == [], f"step {step}: left behind {hidden(home)}"
        if finished:
            assert seen["new"] >= 1 and (seen["old"] >= 1 or old is None)
            return step - 1


def config_seed(folder: Path):
    return json.loads((folder / "config.json").read_text())["training"].get("seed")


@pytest.mark.slow
def test_a_kill_at_every_step_of_an_import_leaves_the_old_or_the_new_model(home, no_builtin, tmp_path):
    new_zip = exported(home, "m", tmp_path, seed=1)
    make_tiny_model(home, "m", seed=0)
    old = digest(home / "models" / "m")
    new_weights = hashlib.sha256(zipfile.ZipFile(new_zip).read("m-src/model.safetensors")).hexdigest()
    steps = sweep(home, ["models", "import", str(new_zip), "--name", "m", "--force"], "m", old,
                  lambda folder: digest(folder)["model.safetensors"] == new_weights)  # fmt: skip
    assert steps >= 6  # journal, two renames, the old model's files and folder, the journal


@pytest.mark.slow
def test_a_kill_at_every_step_of_rm_leaves_the_model_or_nothing(home, no_builtin):
    make_tiny_model(home, "r", seed=0)
    old = digest(home / "models" / "r")
    steps = sweep(home, ["models", "rm", "r", "--yes"], "r", old, lambda folder: False, gone_ok=True)
    assert steps >= 5


@pytest.mark.slow
def test_a_kill_at_every_step_of_train_force_keeps_a_model(home, no_builtin):
    """The issue's case: killed between "old model aside" and "new model in", the model vanished."""
    make_tiny_model(home, "x", seed=0)
    old = digest(home / "models" / "x")
    steps = sweep(home, ["train", *TINY, "--name", "x", "--force"], "x", old, lambda f: config_seed(f) == 1)
    assert steps >= 6


def test_a_kill_mid_way_is_finished_by_any_command_not_only_the_next_train(home, no_builtin, tmp_path):
    """Killed after the old model went aside: `models list`, loading and `rm` all see the model again,
    and a plain `train --name X` afterwards refuses instead of replacing it."""
    new_zip = exported(home, "k", tmp_path, seed=1)
    make_tiny_model(home, "k", seed=0)
    # steps: 1 the journal in, 2 the old model aside, 3 the new one in: killed before the third, in a
    # process of its own (not forked), as a user's would be
    killer = (
        "import os, signal, sys\nfrom diffcli.models import transaction\ncalls = [0]\n"
        "def kill(action, path):\n    calls[0] += 1\n    if calls[0] == 3: os.kill(os.getpid(), signal.SIGKILL)\n"
        "transaction.HOOK = kill\nfrom diffcli.cli.app import main\nmain(sys.argv[1:])\n"
    )
    args = ["models", "import", str(new_zip), "--name", "k", "--force"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", killer, *args], env=env, timeout=300)
    assert done.returncode == -signal.SIGKILL
    assert not (home / "models" / "k").exists()  # half done: only the journal knows where it is
    loads("k")  # the first access finishes the swap
    after = digest(home / "models" / "k")
    r = run_cli(["train", *TINY, "--name", "k"])
    assert "already exists" in one_line(r)
    assert digest(home / "models" / "k") == after and hidden(home) == []


def test_a_failed_rename_puts_the_old_model_back(home, no_builtin, tmp_path, monkeypatch):
    """Not a kill but an error (another device, a full journal disk): the old model returns at once."""
    from diffcli.models import transaction

    new_zip = exported(home, "e", tmp_path, seed=1)
    make_tiny_model(home, "e", seed=0)
    before = digest(home / "models" / "e")
    real_rename = os.rename

    def failing(source, destination):
        if Path(source).name.startswith(transaction.STAGE):
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(source))
        real_rename(source, destination)

    monkeypatch.setattr(transaction.os, "rename", failing)
    line = one_line(run_cli(["models", "import", str(new_zip), "--name", "e", "--force"]))
    assert "cannot import" in line and str(home / "models" / "e") in line
    assert digest(home / "models" / "e") == before and hidden(home) == []


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)")
def test_strace_kill_at_each_rename_of_an_import(home, no_builtin, tmp_path):
    """The same guarantee with the kernel's fault injection, not our hook: SIGKILL at the Nth rename."""
    new_zip = exported(home, "s", tmp_path, seed=1)
    make_tiny_model(home, "s", seed=0)
    old = digest(home / "models" / "s")
    template = tmp_path / "template"
    shutil.copytree(home, template)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    states = set()
    for when in range(1, 12):
        shutil.rmtree(home)
        shutil.copytree(template, home)
        command = ["strace", "-f", "-o", os.devnull, "-e", "trace=rename,renameat,renameat2",
                   "-e", f"inject=rename,renameat,renameat2:signal=KILL:when={when}",
                   sys.executable, "-m", "diffcli", "models", "import", str(new_zip), "--name", "s",
                   "--force"]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0 and "ptrace" in done.stderr.lower():
            pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
        assert run_cli(["models", "list"]).code == 0
        state = "old" if digest(home / "models" / "s") == old else "new"
        loads("s")
        assert hidden(home) == [], (when, hidden(home))
        states.add(state)
        if done.returncode == 0:
            break
    assert states == {"old", "new"}, states


# ----- one lock for every writer ----------------------------------------------------------------------


def test_every_writer_is_refused_while_another_process_writes_the_model(home, no_builtin, tmp_path):
    """`train --name X &` then `models import --name X`, `models rm X` or `models default X`: each refused
    at once, naming the process; the model is untouched."""
    new_zip = exported(home, "b", tmp_path, seed=1)
    make_tiny_model(home, "b", seed=0)
    before = digest(home / "models" / "b")
    with holding_lock(home, "b", "training it") as pid:
        for args in (["models", "import", str(new_zip), "--name", "b", "--force"], ["models", "rm", "b", "--yes"],
                     ["models", "default", "b"], ["train", *TINY, "--name", "b", "--force"]):  # fmt: skip
            line = one_line(run_cli(args))
            assert f"model 'b' is busy: process {pid}" in line and "training it" in line, line
    assert digest(home / "models" / "b") == before and hidden(home) == []
    assert run_cli(["models", "rm", "b", "--yes"]).code == 0, "the lock went with its process"


def test_train_without_force_never_replaces_a_model_that_appeared_while_it_ran(home, no_builtin, monkeypatch):
    import diffcli.data

    real = diffcli.data.load_dataset

    def appear_then_load(*args, **kwargs):
        make_tiny_model(home, "late", seed=0)  # put there behind the lock's back
        return real(*args, **kwargs)

    monkeypatch.setattr(diffcli.data, "load_dataset", appear_then_load)
    r = run_cli(["train", *TINY, "--name", "late"])
    assert "a model named 'late' already exists" in one_line(r)
    assert config_seed(home / "models" / "late") is None, "the model that appeared was replaced"
    assert hidden(home) == []


# ----- no writes into the registry from outside --------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["models", "export", "good", "{home}/models/good/model.safetensors"],
        ["models", "export", "good", "{home}/models/good"],
        ["sample", "-m", "good", "-n", "1", "--steps", "2", "-o", "{home}/models/good/model.safetensors"],
        ["sample", "-m", "good", "-n", "1", "--steps", "2", "--out-dir", "{home}/models/good"],
        ["noise", "builtin:digit", "-t", "5", "-o", "{link}/good/config.json"],
    ],
)
def test_an_output_inside_the_registry_is_refused(home, no_builtin, tmp_path, args):
    make_tiny_model(home, "good")
    before = digest(home / "models" / "good")
    (tmp_path / "link").symlink_to(home / "models")  # a path that only resolves inside
    line = one_line(run_cli([a.format(home=home, link=tmp_path / "link") for a in args]), code=2)
    assert "inside the diffcli registry" in line
    assert digest(home / "models" / "good") == before
    loads("good")


# ----- a run that diverges is never registered ------------------------------------------------------


def test_a_fresh_run_that_diverges_is_not_registered(home, no_builtin):
    """The issue's case: lr 10, no warm-up, no EMA (glyphs, width 8) used to register weights of NaN."""
    args = ["train", *TINY, "--limit", "256", "--epochs", "2", "--lr", "10", "--warmup-steps", "0", "--no-ema"]
    args += ["--name", "d"]
    line = one_line(run_cli(args))
    assert "nothing was registered" in line and "--lr" in line
    assert not (home / "models" / "d").exists() and hidden(home) == []


def _poison_after(monkeypatch, good_steps: int) -> None:
    """From step `good_steps` on, a training step leaves NaN in the weights and returns a NaN loss."""
    from diffcli.training.trainer import Trainer

    real = Trainer._train_step

    def step(self):
        loss = real(self)
        if self.step > good_steps:
            next(self.network.parameters()).data.fill_(float("nan"))
            return float("nan")
        return loss

    monkeypatch.setattr(Trainer, "_train_step", step)


def test_a_resumed_run_that_diverges_keeps_its_last_finite_checkpoint(home, no_builtin, monkeypatch):
    assert run_cli(["train", *TINY, "--name", "g"]).code == 0
    before = digest(home / "models" / "g")
    _poison_after(monkeypatch, 0)
    line = one_line(run_cli(["train", "--name", "g", "--resume", "--epochs", "2", "-q", "--device", "cpu"]))
    assert "keeps its last checkpoint" in line and "--lr" in line
    assert digest(home / "models" / "g") == before
    loads("g")


def test_a_forced_run_that_diverges_keeps_the_old_model(home, no_builtin, monkeypatch):
    make_tiny_model(home, "f")
    before = digest(home / "models" / "f")
    _poison_after(monkeypatch, 0)
    assert "nothing was registered" in one_line(run_cli(["train", *TINY, "--name", "f", "--force"]))
    assert digest(home / "models" / "f") == before and hidden(home) == []


# ----- imports: both weights, sizes before extracting ----------------------------------------------------


def _zip_with_raw(home: Path, tmp_path: Path, raw: bytes | None = None, raw_size: int = 0) -> Path:
    """An exported tiny model plus a model-raw.safetensors: `raw` bytes, or `raw_size` zero bytes."""
    folder = make_tiny_model(home, "z-src")
    target = tmp_path / "z.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for file in ("config.json", "model.safetensors"):
            archive.write(folder / file, f"z/{file}")
        with archive.open("z/model-raw.safetensors", "w", force_zip64=True) as member:
            if raw is not None:
                member.write(raw)
            for _ in range(raw_size // 2**20):
                member.write(bytes(2**20))
    shutil.rmtree(folder)
    return target


def test_raw_weights_holding_nan_are_refused(home, no_builtin, tmp_path):
    import torch
    from safetensors.torch import load_file

    from diffcli.models.weights import save_weights

    folder = make_tiny_model(home, "n-src")
    state = load_file(str(folder / "model.safetensors"))
    next(iter(state.values())).fill_(float("nan"))
    save_weights(state, tmp_path / "raw.safetensors")
    source = _zip_with_raw(home, tmp_path, raw=(tmp_path / "raw.safetensors").read_bytes())
    line = one_line(run_cli(["models", "import", str(source), "--name", "n"]))
    assert "model-raw.safetensors" in line and "NaN" in line and str(source) in line
    assert not (home / "models" / "n").exists() and hidden(home) == []
    assert torch.isnan(next(iter(state.values()))).all()


def test_raw_weights_larger_than_the_network_needs_are_refused_before_copying(home, no_builtin, tmp_path, monkeypatch):
    """The issue's case: a 1.3 MB zip whose raw weights unpack to 1 GB imported (only the EMA was checked)."""
    from diffcli.models import importing

    source = _zip_with_raw(home, tmp_path, raw_size=64 * 2**20)
    assert source.stat().st_size < 2**20
    copied = []
    real_copy = importing._copy

    def copy(reader, destination, limit, where):
        copied.append(destination.name)
        return real_copy(reader, destination, limit, where)

    monkeypatch.setattr(importing, "_copy", copy)
    line = one_line(run_cli(["models", "import", str(source), "--name", "big"]))
    assert "model-raw.safetensors is 64.0 MiB, more than the" in line
    assert "model-raw.safetensors" not in copied and "model.safetensors" not in copied
    assert not (home / "models" / "big").exists() and hidden(home) == []


# ----- leftovers of killed writers, old and new ---------------------------------------------------------


def test_leftovers_of_killed_writers_are_removed_or_restored_by_a_listing(home, no_builtin):
    models = home / "models"
    make_tiny_model(home, "kept")
    # earlier versions: an import killed mid-copy, an import killed between its renames, an rm
    (models / ".import-abc123" / "model").mkdir(parents=True)
    (models / ".import-abc123" / "model" / "model.safetensors").write_bytes(bytes(4096))
    mid = models / ".import-def456"
    (mid / "replaced").mkdir(parents=True)
    shutil.copytree(make_tiny_model(home, "swapped"), mid / "model")
    shutil.rmtree(models / "swapped")
    (models / ".removing-gone-xyz" / "gone").mkdir(parents=True)
    # this version: a staging folder of a dead process, and one of a live one (this test)
    dead = models / ".txn" / "~stage-4000000-abc"
    dead.mkdir(parents=True)
    (dead / "model.safetensors").write_bytes(bytes(4096))
    live = models / ".txn" / f"~stage-{os.getpid()}-abc"
    live.mkdir()
    listed = run_cli(["models", "list", "--json"])
    assert listed.code == 0 and [row["name"] for row in listed.json()] == ["kept", "swapped"]
    loads("swapped")
    assert hidden(home) == [".txn"] and os.listdir(models / ".txn") == [live.name], "a live writer's staging stays"
    live.rmdir()
    assert run_cli(["models", "list"]).code == 0 and hidden(home) == []


# ----- late failures -----------------------------------------------------------------------------------


def test_a_full_disk_at_the_redundant_last_save_cannot_fail_the_run(home, no_builtin, monkeypatch):
    """The run ends right after its epoch's save: the state is saved already, so a full disk then (or
    anything else) cannot turn a registered, complete model into exit 1."""
    from diffcli.training import saving

    saves = []
    real = saving.save_checkpoint

    def save_once(path, state):
        saves.append(state["step"])
        if len(saves) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, state)

    monkeypatch.setattr(saving, "save_checkpoint", save_once)
    r = run_cli(["train", *TINY, "--name", "once"])
    assert r.code == 0, r.stderr
    assert saves == [1]


def test_no_room_for_a_save_is_refused_before_writing_and_keeps_the_last_one(home, no_builtin, monkeypatch):
    assert run_cli(["train", *TINY, "--name", "room"]).code == 0
    before = digest(home / "models" / "room")
    from diffcli.io import atomic

    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    line = one_line(run_cli(["train", "--name", "room", "--resume", "--epochs", "2", "-q", "--device", "cpu"]))
    assert "cannot save model 'room'" in line and "the last save is kept" in line
    assert str(home / "models" / "room") in line

    def model_files(found: dict) -> dict:  # the epoch's sample grid is written before its save
        return {k: v for k, v in found.items() if "samples-" not in k}

    assert model_files(digest(home / "models" / "room")) == model_files(before)


def test_errors_of_a_staged_run_name_the_model_folder_not_the_staging_folder(home, no_builtin, monkeypatch):
    from diffcli.io.atomic import os_error
    from diffcli.training import saving

    def full(path, state):
        raise os_error("write", path, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))

    monkeypatch.setattr(saving, "save_checkpoint", full)
    line = one_line(run_cli(["train", *TINY, "--name", "s"]))
    assert str(home / "models" / "s" / "train") in line and "No space left" in line
    assert not (home / "models" / "s").exists() and hidden(home) == []
