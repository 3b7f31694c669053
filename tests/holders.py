"""Another process holding a model's lock, for tests of what a second writer sees."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HOLD = r"""
import sys
from pathlib import Path
from diffcli.models.locks import ModelLock

with ModelLock(Path(sys.argv[1]), sys.argv[2], sys.argv[3]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


@contextlib.contextmanager
def holding_lock(home: Path, name: str, doing: str = "training it") -> Iterator[int]:
    """Model `name`'s lock held by a child process for the duration; yields the child's PID."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", HOLD, str(home), name, doing]
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        yield child.pid
    finally:
        child.communicate(timeout=30)
