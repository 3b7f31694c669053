"""Where a command's images go, checked before any work is done: a file, stdout, or a folder of files.

`check_output` and `check_out_dir` refuse what cannot be written (PNG bytes to a terminal, a folder given as
the file, a folder that does not exist or takes no new files, a path inside diffcli's home);
`resolve_output` picks the target (`OutputTarget`) and `prepare_out_dir` creates the folder.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from diffcli.errors import DiffcliError, UsageError
from diffcli.io.atomic import check_can_create_files, check_name_fits, first_missing, make_dirs, refuse_inside_home

Notify = Callable[[str], None]


def _ignore(_: str) -> None:
    pass


@dataclass(frozen=True)
class OutputTarget:
    """Where an image goes: a file path, or stdout when path is None."""

    path: Path | None

    @property
    def is_stdout(self) -> bool:
        return self.path is None

    def describe(self) -> str:
        return "stdout" if self.path is None else str(self.path)


def check_output(out: str | None, json_mode: bool = False) -> None:
    """Refuse an output that cannot be written, before any work is done: PNG bytes to a terminal or
    beside JSON on stdout, a folder as the file, a file in a folder that does not exist."""
    if out == "-":
        if json_mode:
            raise UsageError(
                "`json_output` writes JSON to stdout, so the image cannot go there too",
                "write the image to a file with `out`",
            )
        if sys.stdout.isatty():
            raise UsageError(
                "refusing to write PNG bytes to a terminal", "redirect stdout (> out.png) or write to a file with `out`"
            )
        return
    if out is None:
        if sys.stdout.isatty() or json_mode:  # `resolve_output` will make a new file in the current folder
            refuse_inside_home(Path.cwd(), "the current folder")
            check_can_create_files(Path("."), "the image into the current folder", "name a file elsewhere with `out`")
        return
    refuse_inside_home(out, "`out`")
    path = Path(out)
    if path.is_dir():
        raise UsageError(f"`out` {out} is a folder", "give a file name, or write one file per image with `out_dir`")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise DiffcliError(f"cannot write {out}: folder {parent} does not exist", "create it first")
    if path.exists() and not path.is_file():
        return  # a device, a fifo, /proc/self/fd/N: written into as it is, no new file needed
    check_can_create_files(path.resolve().parent if path.is_symlink() else parent, out)  # a link is written through
    check_name_fits(path.resolve() if path.is_symlink() else path, "`out`")


def check_out_dir(out_dir: str) -> None:
    """Refuse, before any work, an output folder that cannot be made or written to: a path that exists
    and is not a folder, or whose nearest existing folder takes no new files. Nothing is created."""
    if out_dir == "-":  # "-" is stdout everywhere else; a folder of that name is never what was meant
        raise UsageError(
            "`out_dir` - would make a folder named '-'",
            "write the image to stdout with `out` -, or name a folder (./- if you mean it)",
        )
    refuse_inside_home(out_dir, "`out_dir`")
    _refuse_a_file_as_out_dir(out_dir)
    missing = first_missing(out_dir)
    existing = Path(out_dir) if missing is None else missing.parent
    if not existing.is_dir():
        raise DiffcliError(f"cannot create {out_dir}: {existing} is not a folder", "choose another `out_dir`")
    check_can_create_files(existing, out_dir)


def _refuse_a_file_as_out_dir(out_dir: str) -> None:
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise UsageError(f"`out_dir` {out_dir} exists and is not a folder")


def resolve_output(
    out: str | None, default_name: str, json_mode: bool = False, notify: Notify = _ignore
) -> OutputTarget:
    """Decide where a command's image goes.

    `-`: stdout (refused on a terminal, and with JSON output, which owns stdout). None: stdout when it
    is piped, else a new file `default_name` (numbered so nothing is overwritten) in the current folder.
    """
    check_output(out, json_mode)
    if out == "-":
        return OutputTarget(None)
    if out is None:
        if not sys.stdout.isatty() and not json_mode:
            return OutputTarget(None)
        path = _unused_name(Path(default_name))
        notify(f"no output file given; writing {path}")
        return OutputTarget(path)
    return OutputTarget(Path(out))


def _unused_name(path: Path) -> Path:
    if not path.exists():
        return path
    for i in range(2, 10_000):
        candidate = path.with_name(f"{path.stem}-{i}{path.suffix}")
        if not candidate.exists():
            return candidate
    raise DiffcliError(f"too many files named like {path}", "pass -o FILE")


def prepare_out_dir(out_dir: str) -> Path:
    """Create the output folder if needed; refuse a path that exists and is not a folder or lies in the registry."""
    refuse_inside_home(out_dir, "`out_dir`")
    _refuse_a_file_as_out_dir(out_dir)
    return make_dirs(out_dir)
