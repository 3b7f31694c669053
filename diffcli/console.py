"""Where people-facing text goes: stderr, through one Rich console, silenced by `-q`.

stdout is reserved for data (PNG bytes, JSON, paths); everything here writes to stderr. Rich already
honours NO_COLOR and drops colour when stderr is not a terminal.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from rich.console import Console


@dataclass
class OutputSettings:
    """Per-invocation output switches, set once by the command that runs."""

    quiet: bool = False
    json: bool = False
    debug: bool = False
    quiet_all: bool = False  # `diffcli -q COMMAND`: quiet whatever the command's own -q says


settings = OutputSettings()
_stderr: Console | None = None


def stderr() -> Console:
    """The shared stderr console (created lazily so tests can swap sys.stderr).

    While a live panel is drawn, sys.stderr is Rich's proxy for the same stream and the panel draws with
    this console: every note printed through it then goes above the panel. A console made anew on the
    proxy would write past the panel straight to the terminal (Rich unwraps the proxy), onto its border."""
    global _stderr
    stream = getattr(sys.stderr, "rich_proxied_file", sys.stderr)
    if _stderr is None or _stderr.file is not stream:
        _stderr = Console(file=stream, highlight=False, soft_wrap=True)
    return _stderr


def stdout() -> Console:
    """A console on stdout, for a command whose output is a human-readable report (a table)."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=True)


def configure(quiet: bool = False, json_output: bool = False, debug: bool | None = None) -> None:
    """Apply a command's -q / --json / --debug switches."""
    settings.quiet = quiet or settings.quiet_all
    settings.json = json_output
    if debug is not None:
        settings.debug = debug


def info(message: str) -> None:
    """A progress or result line for people (hidden by -q)."""
    if not settings.quiet:
        stderr().print(message, markup=False)


def result(message: str) -> None:
    """What a command made, for people (e.g. "wrote sample.png"): shown with -q too, since -q silences
    chatter, never the result; not with --json, whose document on stdout says it."""
    if not settings.json:
        stderr().print(message, markup=False)


def notice(message: str) -> None:
    """Something the tool did on the user's behalf, e.g. resizing an input (hidden by -q)."""
    if not settings.quiet:
        stderr().print(f"note: {message}", markup=False, style="cyan")


def warn(message: str) -> None:
    """Something that may be a mistake; shown even with -q."""
    stderr().print(f"warning: {message}", markup=False, style="yellow")


def error(message: str) -> None:
    """The one-line error the CLI prints before a non-zero exit."""
    stderr().print(f"diffcli: error: {message}", markup=False, style="red")


def emit_json(payload: Any) -> None:
    """Write one JSON document (one line) to stdout."""
    _write(json.dumps(payload, default=_json_default) + "\n")


def emit_line(text: str) -> None:
    """Write one line of data (e.g. a path) to stdout, so it pipes."""
    _write(text + "\n")


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()
        raise


def discard_stdout() -> None:
    """The reader of stdout went away (`diffcli ... | head`): send whatever is still buffered, and any
    later write, to /dev/null, so that neither the rest of the command nor Python's final flush fails.
    The CLI then ends quietly with exit code 0, as `ls | true` does; nobody was reading."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout is not a real file (tests, embedding)
        pass


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "__fspath__"):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
