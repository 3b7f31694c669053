"""Writing output files without ever leaving a half-written one or clobbering something that is not a file.

- A regular file (or a new path) is written to a temporary file beside it, fsynced, then renamed over
  it: a crash, a full disk or Ctrl-C leaves the previous file intact.
- A symlink is followed: its target is written (atomically, if the target is a regular file), the link
  stays a link.
- A character device, FIFO or socket (`/dev/null`, `/dev/stdout`, `/proc/self/fd/N`, a named pipe) is
  written straight into: renaming a file over `/dev/null` would replace the device itself.
- Temporary files carry the writer's PID (`.NAME.PID.RANDOM.tmp`); one left behind by a killed process
  is removed by the next write into the same folder.

Every OS failure becomes one DiffcliError naming the path and the cause ("read-only file system").
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from diffcli.errors import DiffcliError, UsageError
from diffcli.home import home_dir

TEMP_PATTERN = re.compile(r"^\..+\.(\d+)\.[A-Za-z0-9_]+\.tmp$")


def describe_os_error(exc: OSError) -> str:
    """The cause in the system's words: 'No space left on device', 'Read-only file system', ..."""
    if exc.errno is not None and exc.errno in errno.errorcode:
        return os.strerror(exc.errno)
    return str(exc.strerror or exc)


def os_error(action: str, path: str | os.PathLike[str], exc: OSError, hint: str | None = None) -> DiffcliError:
    """One line for an OS failure: what was being done to which path, and why."""
    cause = describe_os_error(exc)
    if hint is None:
        hint = {
            errno.ENOSPC: "free some disk space",
            errno.EDQUOT: "free some disk space",
            errno.EROFS: "write somewhere writable",
            errno.EACCES: "check the permissions",
            errno.EPERM: "check the permissions",
            errno.ENOTDIR: "a part of the path is a file, not a folder",
            errno.ENOENT: "create the folder first",
        }.get(exc.errno or 0)
    return DiffcliError(f"could not {action} {path}: {cause}", hint)


def _is_special(path: Path) -> bool:
    """True for an existing device, FIFO or socket (after following links)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, it is someone else's
        return True
    except OSError:
        return False
    return True


def clean_stale_temps(folder: Path) -> int:
    """Remove temporary files of ours whose writing process is gone; returns how many."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        match = TEMP_PATTERN.match(name)
        if match and not _pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(folder / name)
                removed += 1
    return removed


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO]:
    """Open `path` for writing as described in the module docstring; on success the data is in place."""
    given = Path(path)
    encoding = {} if "b" in mode else {"encoding": "utf-8"}
    if _is_special(given):  # through any links: /dev/stdout, /proc/self/fd/N (a pipe), a FIFO
        try:
            with open(given, mode, **encoding) as handle:
                yield handle
        except OSError as exc:
            raise os_error("write", given, exc) from exc
        return
    target = Path(os.path.realpath(given)) if given.is_symlink() else given  # write the link's file
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        if parent.exists():
            raise DiffcliError(f"cannot write {given}: {parent} is not a folder")
        raise DiffcliError(f"cannot write {given}: folder {parent} does not exist", "create it first")
    clean_stale_temps(parent)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=parent, prefix=_temp_prefix(target.name), suffix=TEMP_SUFFIX)
    except OSError as exc:
        raise os_error("write", given, exc) from exc
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would (or keep the old one).
        with contextlib.suppress(OSError, AttributeError):
            os.fchmod(fd, target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask())
        with os.fdopen(fd, mode, **encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except OSError as exc:
        _discard(tmp_name)
        raise os_error("write", given, exc) from exc
    except BaseException:
        _discard(tmp_name)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write bytes to `path` atomically."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write text (UTF-8) to `path` atomically."""
    with atomic_writer(path, "w") as handle:
        handle.write(text)


def refuse_inside_home(path: str | os.PathLike[str], what: str) -> None:
    """Refuse an output the user named (`what`: "`out`", "the export") that resolves, through links,
    inside the registry: a file written there would change a model behind the registry's transactions
    (a PNG over model.safetensors leaves a model that no longer loads)."""
    home = Path(os.path.realpath(home_dir()))
    resolved = Path(os.path.realpath(Path(path).expanduser()))
    if resolved == home or resolved.is_relative_to(home):
        raise UsageError(
            f"{what} {path} is inside the diffcli registry ({home}), where only diffcli's own commands write",
            "write it somewhere else (`diffcli models export` copies a model out)",
        )


def check_free_space(folder: str | os.PathLike[str], rewritten: list[Path], what: str) -> None:
    """Refuse, before anything is written, a save whose files will not fit: each new copy is written
    beside the old one (then renamed over it), so the free space must hold the files' present size. A
    save that fails halfway would leave a checkpoint and weights of different steps."""
    needed = 0
    for path in rewritten:
        with contextlib.suppress(OSError):
            needed += path.stat().st_size
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the writes themselves will say what is wrong
    if needed > free:
        raise DiffcliError(
            f"{what}: {folder} has {free / 2**20:.1f} MiB free and the save needs about {needed / 2**20:.1f} MiB;"
            " the last save is kept",
            "free some disk space, then continue with `resume`",
        )


def first_missing(path: str | os.PathLike[str]) -> Path | None:
    """The outermost of `path` and its parents that does not exist yet (None: `path` exists): what a
    `mkdir -p` of it would create, and its parent the nearest folder that does exist."""
    missing = None
    for candidate in (Path(path), *Path(path).parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def check_can_create_files(
    folder: str | os.PathLike[str], target: str, hint: str = "choose a folder you can write to"
) -> None:
    """Refuse, before any work, a folder in which no file can be created (read-only, no permission,
    /proc) by creating and removing an empty one, as the atomic writes later will; root passes every
    permission check, so only trying tells."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".diffcli-probe-"):
            pass
    except OSError as exc:
        raise DiffcliError(
            f"cannot write {target}: no file can be created in {folder} ({describe_os_error(exc)})", hint
        ) from None


TEMP_SUFFIX = ".tmp"
TEMP_RANDOM = 8  # characters mkstemp puts between the prefix and the suffix


def _temp_prefix(name: str) -> str:
    return f".{name}.{os.getpid()}."


def check_name_fits(path: Path, label: str) -> None:
    """Refuse, before any work, a file name that fits its folder but not once the temporary name of an
    atomic write is built around it (about 20 characters more), which would fail only at the end."""
    folder = path.parent if str(path.parent) else Path(".")
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    extra = len(os.fsencode(_temp_prefix(""))) + TEMP_RANDOM + len(TEMP_SUFFIX)
    if len(os.fsencode(path.name)) + extra > limit:
        hint = f"use a name of at most {limit - extra} bytes"
        raise DiffcliError(f"{label} {path.name[:40]}... is too long a file name", hint)


def make_dirs(path: str | os.PathLike[str]) -> Path:
    """mkdir -p with a one-line error naming the path and the cause."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DiffcliError(f"cannot create the folder {folder}: a file of that name is in the way") from None
    except OSError as exc:
        raise os_error("create the folder", folder, exc) from exc
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _discard(name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)
