"""Ctrl-C during training: the first press asks the loop to save and stop at the next step boundary;
a second press aborts at once."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Callable, Optional


class InterruptGuard:
    """A context manager that turns the first SIGINT (and SIGTERM) into a flag."""

    def __init__(self, on_first: Optional[Callable[[], None]] = None) -> None:
        self.requested = False
        self._on_first = on_first
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        if self.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        if self._on_first is not None:
            self._on_first()

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
