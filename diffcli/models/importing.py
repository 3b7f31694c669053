"""Copying a model folder or an exported .zip into a staging folder, safely.

What comes in is untrusted: a folder may hold links to /etc or loops, a zip may name `../../x` or
expand to gigabytes. So only the files a model is made of are taken (config.json, model.safetensors,
model-raw.safetensors), only as regular files (never through a link), within MAX_IMPORT_BYTES (checked
against the declared sizes before copying and against the bytes actually read while copying, in
chunks); the training folder `train/` and hidden files are left out; anything else is refused in words.
config.json is copied first; each weights file must then fit within what the architecture it describes can
need (`ceiling`), checked on the declared size before a byte of it is copied, so a small zip cannot unpack
to gigabytes of "weights". Registry.import_model owns the staging folder and removes it on every exit path.
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from diffcli.errors import DiffcliError
from diffcli.models.config import MAX_CONFIG_BYTES
from diffcli.models.layout import CONFIG, PICKLE_SUFFIXES, RAW_WEIGHTS, WEIGHTS, describe_size

MODEL_FILES = (CONFIG, WEIGHTS, RAW_WEIGHTS)
SKIPPED_FOLDERS = ("train",)  # the training history stays behind (export leaves it out too)
# A few times the largest model the trainer plausibly makes (a width-256 UNet: ~0.3 GB of float32
# weights, twice with the raw copy).
MAX_IMPORT_BYTES = 2 * 1024**3
MAX_ZIP_ENTRIES = 1000
CHUNK = 1024 * 1024
FOLDER_CONTENTS = (
    "a model folder holds config.json, model.safetensors and optionally model-raw.safetensors "
    "(train/ and hidden files are skipped)"
)


# config.json -> the most bytes one weights file may hold (None: no limit beyond MAX_IMPORT_BYTES)
Ceiling = Callable[[Path], int | None]


@dataclass
class Staged:
    """What was copied: the staged folder and the pickle files seen (never copied)."""

    folder: Path
    pickles: list[str]


def _check_room(source: Path, staging: Path, total: int) -> None:
    """Refuse, before copying, more than a model can hold or more than the disk has free."""
    if total > MAX_IMPORT_BYTES:
        raise DiffcliError(
            (
                f"{source} holds {describe_size(total)} of model files, "
                f"more than the {describe_size(MAX_IMPORT_BYTES)} a diffcli model can have"
            ),
            "check that it is the model you meant (a damaged or hostile file can claim any size)",
        )
    free = shutil.disk_usage(staging).free
    if total > free:
        where = staging.parents[1]  # the registry's models folder (the staging folder is internal)
        raise DiffcliError(
            f"importing {source} needs {describe_size(total)}, and {where} has {describe_size(free)} free",
            "free some space, or point DIFFCLI_HOME at a disk with room",
        )


def _copy(reader: BinaryIO, destination: Path, limit: int, source: str) -> int:
    """Stream `reader` into a new file, at most `limit` bytes (more is an error); returns bytes written."""
    written = 0
    with open(destination, "xb") as out:
        while True:
            chunk = reader.read(CHUNK)
            if not chunk:
                return written
            written += len(chunk)
            if written > limit:
                raise DiffcliError(
                    f"{source} is larger than it declared ({describe_size(limit)})",
                    "the file is damaged or was changed during the import",
                )
            out.write(chunk)


def _copy_in_order(
    source: Path, folder: Path, sizes: dict[str, int], copy: Callable[[str], None], ceiling: Ceiling | None
) -> None:
    """Copy config.json first (at most MAX_CONFIG_BYTES), then each weights file once its declared size
    is known to fit what that config's architecture can need."""
    config_size = sizes.get(CONFIG, 0)
    if config_size > MAX_CONFIG_BYTES:
        raise DiffcliError(
            f"{source}: {CONFIG} is {describe_size(config_size)};"
            f" a model config is at most {describe_size(MAX_CONFIG_BYTES)}",
            "import only models made by diffcli",
        )
    if CONFIG in sizes:
        copy(CONFIG)
    limit = ceiling(folder / CONFIG) if ceiling is not None and CONFIG in sizes else None
    for name in (WEIGHTS, RAW_WEIGHTS):
        if limit is not None and sizes.get(name, 0) > limit:
            raise DiffcliError(
                f"{source}: {name} is {describe_size(sizes[name])}, more than the {describe_size(limit)}"
                f" the network in {CONFIG} can need",
                "the file is damaged or made for another model; export the model again with `diffcli models export`",
            )
    for name in (WEIGHTS, RAW_WEIGHTS):
        if name in sizes:
            copy(name)


# ----- folders -------------------------------------------------------------------------------------


def stage_folder(source: Path, folder: Path, ceiling: Ceiling | None = None) -> Staged:
    """Copy the model files of the folder `source` (the folder itself may be a link; nothing inside
    it is followed) into the empty folder `folder`."""
    chosen: list[tuple[str, int]] = []
    pickles: list[str] = []
    with os.scandir(source) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        path = Path(source) / entry.name
        if entry.name.startswith("."):
            continue
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            raise DiffcliError(
                f"{path} is a symbolic link; diffcli imports regular files only and never follows links",
                "copy the file itself into the folder",
            )
        if entry.name in SKIPPED_FOLDERS and stat.S_ISDIR(info.st_mode):
            continue
        if entry.name in MODEL_FILES and stat.S_ISREG(info.st_mode):
            chosen.append((entry.name, info.st_size))
        elif entry.name.lower().endswith(PICKLE_SUFFIXES) and stat.S_ISREG(info.st_mode):
            pickles.append(entry.name)
        else:
            what = "folder" if stat.S_ISDIR(info.st_mode) else "file" if stat.S_ISREG(info.st_mode) else "special file"
            raise DiffcliError(
                f"{path} is a {what} that is not part of a model",
                f"{FOLDER_CONTENTS}; move it out, or import a .zip from `diffcli models export`",
            )
    _check_room(source, folder, sum(size for _, size in chosen))
    folder.mkdir(exist_ok=True)
    sizes = dict(chosen)

    def copy(name: str) -> None:
        path = Path(source) / name
        # O_NOFOLLOW: a file swapped for a link after the listing is refused, not followed.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as reader:
            if not stat.S_ISREG(os.fstat(reader.fileno()).st_mode):
                raise DiffcliError(f"{path} is no longer a regular file", "do not change the folder during the import")
            _copy(reader, folder / name, min(sizes[name], MAX_IMPORT_BYTES), str(path))

    _copy_in_order(source, folder, sizes, copy, ceiling)
    return Staged(folder, pickles)


# ----- zips ----------------------------------------------------------------------------------------


def unsafe_name(name: str) -> str | None:
    """Why a zip entry's name cannot be extracted as given (None when it is safe)."""
    if not name or "\x00" in name or any(ord(c) < 32 for c in name):
        return "has control characters in its name"
    if "\\" in name:
        return "uses backslashes in its name"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "climbs out of its folder with '..'"
    return None


def stage_zip(source: Path, folder: Path, ceiling: Ceiling | None = None) -> Staged:
    """Extract the one model folder of an exported .zip into the empty folder `folder`."""
    try:
        with zipfile.ZipFile(source) as archive:
            return _extract(source, archive, folder, ceiling)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise DiffcliError(
            f"{source} is a damaged or unsupported zip ({str(exc)[:200]})",
            "export the model again with `diffcli models export`",
        ) from None


def _extract(source: Path, archive: zipfile.ZipFile, folder: Path, ceiling: Ceiling | None) -> Staged:
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise DiffcliError(
            f"{source} holds {len(infos)} entries; an exported model holds a handful",
            "export the model again with `diffcli models export`",
        )
    seen: set[str] = set()
    for info in infos:
        why = unsafe_name(info.filename)
        if why:
            raise DiffcliError(
                f"{source} holds an entry {info.filename!r} that {why}; it was not extracted",
                "import only zips made by `diffcli models export`",
            )
        if info.filename in seen:
            raise DiffcliError(
                f"{source} holds {info.filename!r} twice", "export the model again with `diffcli models export`"
            )
        seen.add(info.filename)
    files = [i for i in infos if not i.is_dir()]
    configs = [i for i in files if PurePosixPath(i.filename).name == CONFIG]
    if len(configs) != 1:
        raise DiffcliError(f"{source} should hold exactly one {CONFIG}, found {len(configs)}")
    prefix = PurePosixPath(configs[0].filename).parent
    chosen: list[zipfile.ZipInfo] = []
    pickles: list[str] = []
    for info in files:
        rel = _inside(PurePosixPath(info.filename), prefix)
        if rel is None:
            model_folder = str(prefix) + "/" if str(prefix) != "." else "(the top level)"
            raise DiffcliError(
                f"{source} holds {info.filename!r}, outside the model's folder {model_folder}",
                "a model zip holds one model folder; export it again with `diffcli models export`",
            )
        if (rel.parts[0] in SKIPPED_FOLDERS and len(rel.parts) > 1) or rel.parts[0].startswith("."):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            raise DiffcliError(
                f"{source} holds {info.filename!r} as a symbolic link; diffcli imports regular files only",
                "export the model again with `diffcli models export`",
            )
        if len(rel.parts) == 1 and rel.name in MODEL_FILES:
            chosen.append(info)
        elif len(rel.parts) == 1 and rel.name.lower().endswith(PICKLE_SUFFIXES):
            pickles.append(rel.name)
        else:
            raise DiffcliError(
                f"{source} holds {info.filename!r}, which is not part of a model",
                f"{FOLDER_CONTENTS}; export it again with `diffcli models export`",
            )
    for info in chosen:
        if info.flag_bits & 0x1:
            raise DiffcliError(f"{source} is encrypted ({info.filename})", "export the model again without a password")
    _check_room(source, folder, sum(i.file_size for i in chosen))
    folder.mkdir(exist_ok=True)
    members = {PurePosixPath(i.filename).name: i for i in chosen}

    def copy(name: str) -> None:
        info = members[name]
        with archive.open(info) as reader:
            _copy(reader, folder / name, info.file_size, f"{source}: {info.filename}")

    _copy_in_order(source, folder, {name: info.file_size for name, info in members.items()}, copy, ceiling)
    return Staged(folder, pickles)


def _inside(name: PurePosixPath, prefix: PurePosixPath) -> PurePosixPath | None:
    """`name` relative to the folder `prefix` ('.' is the top level), or None when it lies outside."""
    if str(prefix) == ".":
        return name
    try:
        rel = name.relative_to(prefix)
    except ValueError:
        return None
    return rel if rel.parts else None
