"""One writer per model: a lock file naming the process that trains it.

`diffcli train --name C` takes `locks/C.lock` in the registry (created exclusively, holding the PID, the
host and the start time); a second run on the same model is refused with a line naming that PID. A lock
whose process is gone (same host, PID not running) is stale and taken over, so a crash never leaves a
model locked for good.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Optional

from diffcli.errors import DiffcliError
from diffcli.io.atomic import make_dirs, os_error


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class ModelLock:
    """A context manager holding the lock of model `name` in `root/locks/`."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = Path(root) / "locks" / f"{name}.lock"
        self.name = name
        self.held = False

    def holder(self) -> Optional[dict]:
        """Who holds the lock ({"pid", "host", "since"}), or None when it is free or unreadable."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("pid"), int) else None

    def _stale(self, holder: Optional[dict]) -> bool:
        if holder is None:  # unreadable: a writer died between create and write, or garbage
            with contextlib.suppress(OSError):
                return time.time() - self.path.stat().st_mtime > 10
            return True
        return holder.get("host") == socket.gethostname() and not _alive(holder["pid"])

    def acquire(self) -> "ModelLock":
        make_dirs(self.path.parent)
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()})
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self.holder()
                if self._stale(holder):
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
                    continue
                since = time.strftime("%H:%M:%S", time.localtime(holder["since"])) if holder and "since" in holder else "?"
                who = f"process {holder['pid']} on {holder.get('host', '?')}" if holder else "another process"
                raise DiffcliError(
                    f"model {self.name!r} is being trained by {who} (since {since})",
                    f"wait for it to finish or stop it; a lock left by a crash is cleared automatically ({self.path})",
                ) from None
            except OSError as exc:
                raise os_error("lock", self.path, exc) from exc
            with os.fdopen(fd, "w") as handle:
                handle.write(record)
            self.held = True
            return self
        raise DiffcliError(f"could not take the lock {self.path}", "try again")

    def release(self) -> None:
        if self.held:
            holder = self.holder()
            if holder is None or holder.get("pid") == os.getpid():
                with contextlib.suppress(OSError):
                    self.path.unlink()
            self.held = False

    def __enter__(self) -> "ModelLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
