"""One writer per model: a per-model lock shared by every command that writes a model.

`locks/NAME.lock` in the registry is an OS file lock (filelock: flock on POSIX), so the kernel releases it
when its process dies, however it dies: a crash never leaves a model locked. Beside it, `NAME.owner.json`
says who holds it ({"pid", "host", "since", "doing"}), only so that a second writer can be refused at once
with a line naming that process; the record itself decides nothing.

Within one process the lock is re-entrant (train holds it for its whole run and its promotion, default
and recovery take it again), counted per registry and model.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from diffcli.errors import DiffcliError

# (lock file) -> [the held FileLock, how many holders in this process]
_HELD: dict[str, list] = {}


class ModelBusy(DiffcliError):
    """The model's lock is held by another process."""


class ModelLock:
    """A context manager holding the lock of model `name` under `root/locks/`.

    doing: what the holder is doing, for the refusal another writer sees ("training it", "removing it").
    """

    def __init__(self, root: Path, name: str, doing: str = "training it") -> None:
        self.path = Path(root) / "locks" / f"{name}.lock"
        self.owner_path = self.path.with_name(f"{name}.owner.json")
        self.name = name
        self.doing = doing
        self.held = False

    def holder(self) -> dict | None:
        """Who says they hold the lock ({"pid", "host", "since", "doing"}), or None when unknown."""
        try:
            data = json.loads(self.owner_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None

    def acquire(self) -> ModelLock:
        """Take the lock now or raise ModelBusy naming its holder (never waits); OSError when the lock
        file cannot be made (a read-only registry: the caller words it)."""
        from filelock import FileLock, Timeout

        key = str(self.path)
        if key in _HELD:
            _HELD[key][1] += 1
            self.held = True
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(key, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise self._busy() from None
        _HELD[key] = [lock, 1]
        self.held = True
        record = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "doing": self.doing}
        with contextlib.suppress(OSError):  # only words for a refusal; the lock itself is what counts
            from diffcli.io.atomic import atomic_write_text

            atomic_write_text(self.owner_path, json.dumps(record))
        return self

    def _busy(self) -> ModelBusy:
        holder = self.holder()
        who = f"process {holder['pid']} on {holder.get('host', '?')}" if holder else "another process"
        doing = holder.get("doing", "writing it") if holder else "writing it"
        since = ""
        if holder and isinstance(holder.get("since"), (int, float)):
            since = f" (since {time.strftime('%H:%M:%S', time.localtime(holder['since']))})"
        return ModelBusy(f"model {self.name!r} is busy: {who} is {doing}{since}", "wait for it to finish, or stop it")

    def release(self) -> None:
        """Give the lock back (the last holder in this process releases the file lock)."""
        if not self.held:
            return
        self.held = False
        key = str(self.path)
        entry = _HELD.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del _HELD[key]
        holder = self.holder()
        if holder is not None and holder.get("pid") == os.getpid():
            with contextlib.suppress(OSError):
                self.owner_path.unlink()
        # The lock file stays: unlinking a flock file lets two processes lock two different inodes.
        entry[0].release()

    def __enter__(self) -> ModelLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def held_here(root: Path, name: str) -> bool:
    """Whether this process holds model `name`'s lock."""
    return str(Path(root) / "locks" / f"{name}.lock") in _HELD
