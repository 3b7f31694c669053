"""Keeping the terminal in step with a live panel's record of what it drew: signals held while a frame
is written, and no echo or output flush on Ctrl-C while the panel is up."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold Ctrl-C (and SIGTERM, SIGHUP) while a frame is written, and deliver it right after: a signal
    that lands inside a large terminal write can lose the rest of that write, and the panel's record of
    what it drew no longer matches the screen (stale lines above the next frame). Holding costs nothing:
    a frame takes milliseconds."""
    held = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}
    if not hasattr(signal, "pthread_sigmask") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class EchoOff:
    """While the live panel is drawn, the terminal neither echoes what is typed nor flushes its output
    on Ctrl-C. Both would put the screen out of step with the panel's record of what it drew: an echoed
    ^C after the last line wraps onto a new one, and a flush (the default on an interrupt key) drops the
    rest of a frame being written. Every later redraw then starts a few lines off, leaving stale copies
    of the panel's top lines above it."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._saved: Any = None

    def __enter__(self) -> EchoOff:
        try:
            import termios

            stream = sys.stdin
            if stream is None or not stream.isatty():
                return self
            fd = stream.fileno()
            self._saved = termios.tcgetattr(fd)
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~(termios.ECHO | getattr(termios, "ECHOCTL", 0))
            quiet[3] |= getattr(termios, "NOFLSH", 0)  # Ctrl-C must not drop a half-written frame
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
            self._fd = fd
        except (ImportError, OSError, ValueError, AttributeError):  # no termios (Windows), no terminal
            self._fd = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            import termios

            try:
                termios.tcsetattr(self._fd, termios.TCSANOW, self._saved)
            except (OSError, ValueError):
                pass
            self._fd = None
