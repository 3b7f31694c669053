"""Running a command under a real pseudo-terminal, to test what people see on a TTY (live panels).

The child gets the pty's slave side as stdin, stdout and stderr, so `isatty()` is true everywhere and
Rich draws its live display; we read everything from the master side. POSIX only (pty, termios).
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence

# CSI (colours, cursor moves), OSC (titles, links) and two-character escapes such as ESC 7 / ESC 8.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_78=>]")


class PtyTimeout(AssertionError):
    """The child outlived its timeout; `output` holds what it wrote before it was killed."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def strip_ansi(text: str) -> str:
    """The text with terminal escape sequences removed (what is left to read, not where it was drawn)."""
    return _ANSI.sub("", text)


def run_in_pty(
    argv: Sequence[str],
    env: Mapping[str, str | None] | None = None,
    timeout: float = 60,
    cols: int = 100,
    rows: int = 40,
    keys: Sequence[tuple[str, bytes]] = (),
) -> tuple[int, str]:
    """Run `argv` with a pty of `cols` x `rows` as its terminal; return (exit code, all output decoded).

    The environment is this process's plus `env` (a value of None removes that variable), with
    TERM=xterm-256color, COLUMNS and LINES set unless `env` says otherwise. Output is decoded as UTF-8
    with replacement; the pty turns "\\n" into "\\r\\n". On timeout the child's process group is
    killed and PtyTimeout (an AssertionError) is raised carrying the output so far.
    keys: (text, bytes) pairs typed in order, each once `text` has appeared in the output (b"\\x03" is
    Ctrl-C: the terminal turns it into SIGINT, as a person's key press does).
    """
    child_env = dict(os.environ)
    child_env.update({"TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows), "PYTHONUNBUFFERED": "1"})
    for key, value in (env or {}).items():
        if value is None:
            child_env.pop(key, None)
        else:
            child_env[key] = value

    master, slave = os.openpty()
    # The real window size, so programs that ask the tty (not $COLUMNS) see the same geometry.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    try:
        process = subprocess.Popen(
            list(argv),
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=child_env,
            start_new_session=True,  # its own session, so the pty can become its controlling terminal
            preexec_fn=_take_terminal,
            close_fds=True,
        )
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    os.close(slave)  # only the child holds it now: EOF/EIO on the master once the child is done

    chunks: list[bytes] = []
    pending_keys = list(keys)
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(process)
                output = b"".join(chunks).decode("utf-8", errors="replace")
                raise PtyTimeout(
                    f"{argv!r} still running after {timeout:g}s; output so far:\n{strip_ansi(output)[-2000:]}", output
                )
            ready, _, _ = select.select([master], [], [], min(left, 0.2))
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed (Linux)
                    break
                if not data:  # EOF (BSD / macOS)
                    break
                chunks.append(data)
                if pending_keys and pending_keys[0][0] in strip_ansi(
                    b"".join(chunks).decode("utf-8", errors="replace")
                ):
                    os.write(master, pending_keys.pop(0)[1])
            elif process.poll() is not None and not _pending(master):
                break  # exited, and a grandchild may still hold the slave: don't wait for it
        try:
            code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # closed its terminal but kept running
            _kill(process)
            output = b"".join(chunks).decode("utf-8", errors="replace")
            raise PtyTimeout(f"{argv!r} closed its terminal but did not exit within {timeout:g}s", output) from None
    finally:
        os.close(master)
        if process.poll() is None:
            _kill(process)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def _take_terminal() -> None:
    """In the child, after setsid: make the pty (its stdin) the controlling terminal, so that typing
    Ctrl-C into it sends SIGINT to the child's process group, as in a real terminal."""
    try:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError:
        pass


def _pending(fd: int) -> bool:
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def python_argv(script: str | os.PathLike[str]) -> list[str]:
    """argv that runs a Python file with this interpreter (the test venv's)."""
    return [sys.executable, os.fspath(script)]


def final_screen(output: str, cols: int, rows: int) -> list[str]:
    """What a terminal of cols x rows shows after `output` (a VT100 emulator replays it), line by line,
    scrollback included: stale copies of a redrawn panel would show up here."""
    import pyte

    screen = pyte.HistoryScreen(cols, rows, history=10_000)
    stream = pyte.Stream(screen)
    stream.feed(output)
    history = ["".join(line[x].data for x in range(cols)) for line in screen.history.top]
    return [line.rstrip() for line in history + screen.display]
