"""One transaction discipline for every write of a model: train's promotion, import, rm, default, pipelines.

Every writer of model NAME holds NAME's lock (locks.py) for the whole operation. New content is built in a
staging folder `models/.txn/~stage-PID-XXXX` (owned by process PID: a run in training, an import being
copied). Putting it in place, or removing a model, is a short sequence of renames recorded first in a
journal, `models/.txn/NAME.json`, written atomically before the first rename:

    put:     journal {op: put, new: ~stage-...}; models/NAME -> .txn/~old-NAME; .txn/~stage-... -> models/NAME;
             delete ~old-NAME; delete the journal
    remove:  journal {op: remove}; models/NAME -> .txn/~old-NAME; delete ~old-NAME; delete the journal

A journal exists only once the new content is complete, so recovery rolls a journaled operation forward
(the new model in place, the old one deleted); a staging folder without a journal is unfinished work and
is deleted once its process is gone. `recover` runs at the start of every registry access (the Registry
calls it before listing), under each model's lock, skipping models whose lock a live writer holds: after a
SIGKILL at any step every model is its old self or its new self, and nothing is left behind. Folders left
by earlier versions' own staging (`.staging-*`, `.replaced-*`, `.import-*`, `.removing-*`) are restored or
removed the same way.

`HOOK`, when set, is called before every rename, unlink and rmdir the transaction performs (the tests kill
the process there, at each step in turn).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from diffcli.errors import DiffcliError
from diffcli.models.layout import validate_name
from diffcli.models.locks import ModelBusy, ModelLock, held_here

TXN = ".txn"
STAGE = "~stage-"
ASIDE = "~old-"
LEGACY = (".staging-", ".replaced-", ".import-", ".removing-")

HOOK: Callable[[str, Path], None] | None = None


def _step(action: str, path: Path) -> None:
    if HOOK is not None:
        HOOK(action, path)


def _rename(source: Path, destination: Path) -> None:
    _step("rename", source)
    os.rename(source, destination)


def _delete(path: Path) -> None:
    """Remove a file or a whole folder (links are removed, never followed), one step at a time."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        for child in sorted(os.listdir(path)):
            _delete(path / child)
        _step("rmdir", path)
        os.rmdir(path)
    else:
        _step("unlink", path)
        os.unlink(path)


def _discard(path: Path) -> None:
    with contextlib.suppress(OSError):
        _delete(path)


def _pid_alive(pid: int) -> bool:
    from diffcli.io.atomic import _pid_alive as alive

    return alive(pid)


def txn_dir(models_dir: Path) -> Path:
    """Where staging folders, asides and journals live (inside models/, so every move is one rename)."""
    return Path(models_dir) / TXN


def _tidy(models_dir: Path) -> None:
    """Remove the transaction folder once it is empty (nothing is left in the registry)."""
    with contextlib.suppress(OSError):
        os.rmdir(txn_dir(models_dir))


class Staging:
    """A new, empty staging folder of this process, for content that may become a model; deleted on
    exit unless a transaction moved it into place. `reword` makes errors name what the user knows."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        self.path: Path | None = None

    def __enter__(self) -> Path:
        folder = txn_dir(self.models_dir)
        for attempt in range(2):  # another process may remove the empty .txn between our two calls
            try:
                folder.mkdir(parents=True, exist_ok=True)
                self.path = Path(tempfile.mkdtemp(dir=folder, prefix=f"{STAGE}{os.getpid()}-"))
                return self.path
            except OSError as exc:
                if isinstance(exc, FileNotFoundError) and not attempt:
                    continue
                exc.filename, exc.filename2 = str(self.models_dir), None
                raise
        raise AssertionError("unreachable")

    def __exit__(self, *exc: object) -> None:
        if self.path is not None:
            _discard(self.path)
        _tidy(self.models_dir)

    def reword(self, exc: BaseException, shown: str | os.PathLike[str]) -> BaseException:
        """The same error with the staging folder's path replaced by `shown` (the model's folder, the
        imported source) and an OS error's file by the registry's models folder: a message never names
        an internal staging path."""
        if self.path is None:
            return exc
        inner, outer = str(self.path), str(shown)
        if isinstance(exc, DiffcliError):
            exc.message = exc.message.replace(inner, outer)
            exc.hint = exc.hint.replace(inner, outer) if exc.hint else exc.hint
            exc.args = (exc.message,)
        elif isinstance(exc, OSError):  # a full or read-only disk: the registry's folder is what to name
            for attr in ("filename", "filename2"):
                value = getattr(exc, attr)
                if value is not None and str(value).startswith(str(txn_dir(self.models_dir))):
                    setattr(exc, attr, str(self.models_dir))
        return exc


class ModelTransaction:
    """Hold model `name`'s lock (finishing whatever a killed writer left first) and change the model by
    journaled renames: `put` a staged folder in place, or `remove` the model. OSErrors propagate with the
    model's folder as their file name, for the caller to word."""

    def __init__(self, root: Path, models_dir: Path, name: str, doing: str) -> None:
        self.models_dir = Path(models_dir)
        self.name = name
        self.lock = ModelLock(root, name, doing)
        self.target = self.models_dir / name
        self.journal = txn_dir(self.models_dir) / f"{name}.json"
        self.aside = txn_dir(self.models_dir) / f"{ASIDE}{name}"

    def __enter__(self) -> ModelTransaction:
        self.lock.acquire()
        try:
            _finish(self.models_dir, self.name)
        except OSError:
            pass  # a registry that cannot be written: the operation itself will say so
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
        _tidy(self.models_dir)

    def exists(self) -> bool:
        return os.path.lexists(self.target)

    def put(self, staged: Path, replace: bool, hint: str = "replace it with `force`, or choose another name") -> None:
        """Make the complete folder `staged` (a Staging path) the model: a model already there is replaced
        only when `replace` says so (checked now, under the lock, whatever was true when the work began)."""
        if self.exists() and not replace:
            raise DiffcliError(f"a model named {self.name!r} already exists", hint)
        try:
            _write_journal(self.journal, {"op": "put", "name": self.name, "new": staged.name, "pid": os.getpid()})
            moved = self.exists()
            if moved:
                _rename(self.target, self.aside)
            try:
                _rename(staged, self.target)
            except OSError:
                if moved and not self.exists():
                    os.rename(self.aside, self.target)  # a failure (not a kill) undoes the first rename
                with contextlib.suppress(OSError):
                    os.unlink(self.journal)
                raise
            _close(self.journal, self.aside)
        except OSError as exc:
            exc.filename, exc.filename2 = str(self.target), None
            raise

    def remove(self) -> None:
        """Delete the model: one rename takes it out of the registry, then it is deleted."""
        try:
            txn_dir(self.models_dir).mkdir(exist_ok=True)
            _write_journal(self.journal, {"op": "remove", "name": self.name, "pid": os.getpid()})
            try:
                _rename(self.target, self.aside)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(self.journal)
                raise
            _close(self.journal, self.aside)
        except OSError as exc:
            exc.filename, exc.filename2 = str(self.target), None
            raise


def _write_journal(path: Path, record: dict) -> None:
    """Write the journal atomically and durably (temp file named as io.atomic's, fsync, rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(record))
            handle.flush()
            os.fsync(handle.fileno())
        _rename(Path(tmp), path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_journal(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("op") not in ("put", "remove"):
        return None
    new = record.get("new")
    plain = isinstance(new, str) and new.startswith(STAGE) and "/" not in new and "\\" not in new
    if record["op"] == "put" and not plain:  # names a staging folder inside .txn, nothing else
        return None
    return record


def _close(journal: Path, aside: Path) -> None:
    """The last steps of every operation: delete the old model moved aside, then the journal."""
    _delete(aside)
    _step("unlink", journal)
    os.unlink(journal)


def _finish(models_dir: Path, name: str) -> None:
    """Roll a journaled operation on `name` forward (its new content is complete) and put back a model
    moved aside with nothing in its place. The caller holds `name`'s lock."""
    txn = txn_dir(models_dir)
    journal, aside, target = txn / f"{name}.json", txn / f"{ASIDE}{name}", models_dir / name
    if not (os.path.lexists(journal) or os.path.lexists(aside)):
        return
    record = _read_journal(journal)
    op = record["op"] if record else None
    if op == "put" and (txn / record["new"]).is_dir():
        new = txn / record["new"]
        if os.path.lexists(target) and os.path.lexists(aside):
            _delete(new)  # cannot happen by our steps: keep the model that is in place
        else:
            if os.path.lexists(target):
                _rename(target, aside)
            _rename(new, target)
    elif op == "remove" and os.path.lexists(target) and not os.path.lexists(aside):
        _rename(target, aside)
    if os.path.lexists(aside) and not os.path.lexists(target) and op != "remove":
        _rename(aside, target)  # nothing took its place: the old model returns
    _delete(aside)
    if os.path.lexists(journal):
        _step("unlink", journal)
        os.unlink(journal)


def recover(root: Path, models_dir: Path) -> None:
    """Finish or undo what killed writers left in the registry (see the module docstring). Models whose
    lock is held by a live writer (or by this process) are skipped; a registry that cannot be written is
    left as it is (listing still works)."""
    models_dir = Path(models_dir)
    try:
        names = os.listdir(models_dir)
    except OSError:
        return
    legacy = [n for n in names if n.startswith(LEGACY)]
    if TXN not in names and not legacy:
        return
    txn = txn_dir(models_dir)
    try:
        entries = sorted(os.listdir(txn)) if TXN in names else []
    except OSError:
        entries = []
    pending = {n[: -len(".json")] for n in entries if n.endswith(".json") and not n.startswith(".")}
    pending |= {n[len(ASIDE) :] for n in entries if n.startswith(ASIDE)}
    for name in sorted(n for n in pending if _valid(n)):
        _under_lock(root, name, lambda name=name: _finish(models_dir, name))
    with contextlib.suppress(OSError):
        referenced = {r["new"] for r in (_read_journal(txn / f"{n}.json") for n in pending) if r and r.get("new")}
        for entry in os.listdir(txn):
            owner = entry[len(STAGE) :].split("-", 1)[0] if entry.startswith(STAGE) else ""
            if owner.isdigit() and not _pid_alive(int(owner)) and entry not in referenced:
                _discard(txn / entry)
        from diffcli.io.atomic import clean_stale_temps

        clean_stale_temps(txn)
    for entry in legacy:
        _recover_legacy(root, models_dir, entry)
    _tidy(models_dir)


def _under_lock(root: Path, name: str, action: Callable[[], None]) -> None:
    """Run `action` holding `name`'s lock, unless someone (this process included) holds it already."""
    if held_here(root, name):
        return
    try:
        with ModelLock(root, name, "recovering it"):
            action()
    except (ModelBusy, OSError):
        pass


def _recover_legacy(root: Path, models_dir: Path, entry: str) -> None:
    """Staging folders of earlier versions: `.staging-NAME-PID` and `.replaced-NAME-PID` (train's, the
    latter the old model moved aside), `.import-XXXX/{model,replaced}` and `.removing-NAME-XXXX`. A model
    with nothing in its place gets back what was moved aside; everything else is deleted."""
    path = models_dir / entry
    kind, _, rest = entry[1:].partition("-")
    name, restore = None, None
    if kind in ("staging", "replaced"):
        name, _, pid = rest.rpartition("-")
        if pid.isdigit() and _pid_alive(int(pid)):
            return
        restore = path if kind == "replaced" else None
    elif kind == "import" and (path / "replaced").is_dir():
        # The old model was moved aside, so the new one had been checked complete: it goes in if it can.
        restore = next((path / part for part in ("model", "replaced") if (path / part / "config.json").is_file()), None)
        name = _config_name(restore) if restore is not None else None
    if name and restore is not None and _valid(name):

        def put_back() -> None:
            if not os.path.lexists(models_dir / name):
                _rename(restore, models_dir / name)
            _delete(path)

        _under_lock(root, name, put_back)
    else:
        _discard(path)


def _config_name(folder: Path) -> str | None:
    try:
        name = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _valid(name: str) -> bool:
    try:
        validate_name(name)
    except DiffcliError:
        return False
    return True
