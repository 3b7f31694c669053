"""SIGTERM as an exception, for work that must clean up after itself (a half-copied import).

By default SIGTERM ends the process at once, so no `finally` runs and temporary folders stay behind.
Inside `sigterm_raises()` the first SIGTERM raises `Terminated` instead (a BaseException, like
KeyboardInterrupt, so `except Exception` does not swallow it and every `finally` runs); `hold()`
defers a SIGTERM that arrives while the cleanup itself runs, and the block re-raises it at the end.
The previous handler is restored on exit. Only a process that would have died of SIGTERM is
changed: a handler someone else installed, an ignored SIGTERM, or a call outside the main thread is
left alone.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class Terminated(BaseException):
    """The process received SIGTERM; the CLI reports it in one line and exits 143 (128 + 15)."""

    exit_code = 143

    def __init__(self, message: str = "terminated (SIGTERM)") -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class _Guard:
    def __init__(self) -> None:
        self.raising = True
        self.pending = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.raising:
            self.raising = False  # one exception only: a second SIGTERM must not interrupt the cleanup
            raise Terminated()
        self.pending = True

    def hold(self) -> None:
        """From now on a SIGTERM is remembered, not raised (call it before cleaning up)."""
        self.raising = False


@contextlib.contextmanager
def sigterm_raises() -> Iterator[_Guard]:
    """Within the block, SIGTERM raises Terminated (see the module docstring). Yields the guard, whose
    `hold()` defers SIGTERM until the block ends."""
    guard = _Guard()
    installed = False
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGTERM)
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, guard.handle)
            installed = True
    try:
        yield guard
    finally:
        if installed:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if guard.pending:
        raise Terminated()
