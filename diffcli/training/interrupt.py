"""Ctrl-C during training: the first press asks the loop to save and stop at the next step boundary;
a second press aborts at once.

The handler only sets a flag. It must not print: a signal arrives in the middle of whatever the main
thread is doing, including writing a frame of the live panel, and a second write from inside the
handler corrupts the screen (stale copies of the panel's top lines). The loop reports at the boundary.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


class InterruptGuard:
    """A context manager that turns the first SIGINT (and SIGTERM, and SIGHUP: a closed terminal) into
    a flag."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM, *([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
