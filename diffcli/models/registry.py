"""The model registry: one place, shared by every command, that maps model names to folders.

Layout under the root ($DIFFCLI_HOME, else platformdirs' user data dir for "diffcli"):

    models/NAME/config.json          what the model is (config.ModelConfig)
    models/NAME/model.safetensors    inference weights (EMA when trained with it)
    models/NAME/model-raw.safetensors  the raw (non-EMA) weights, when trained with EMA
    models/NAME/train/               resumable checkpoint, loss log, sample grids, loss curve
    settings.json                    {"default": NAME}
    data/  cache/                    datasets and caches (prompt embeddings, reference statistics)

Built-in models ship inside the package (read-only) and are listed beside the user's; a user model of
the same name takes precedence. Nothing here ever unpickles a file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from diffcli.errors import DiffcliError
from diffcli.io.atomic import atomic_write_text, atomic_writer, refuse_inside_home
from diffcli.models import transaction
from diffcli.models.config import ModelConfig
from diffcli.models.layout import (  # noqa: F401 (the registry's names, re-exported)
    CONFIG,
    NAME_CHARS,
    PICKLE_SUFFIXES,
    RAW_WEIGHTS,
    WEIGHTS,
    describe_size,
    validate_name,
)

BUILTIN_DIR = Path(__file__).with_name("builtin")
FALLBACK_DEFAULT = "mnist"


def registry_root() -> Path:
    """$DIFFCLI_HOME, else the platform's user data folder for diffcli."""
    from diffcli.home import home_dir

    return home_dir()


def os_failure(action: str, exc: OSError, writing: bool = True) -> DiffcliError:
    """One line for a failed read or write: what, which path, why ("no space left on device"), and what
    to do about the common causes."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    reason = reason[:1].lower() + reason[1:]
    hint = None
    if exc.errno == errno.ENOSPC:
        hint = "free some space, or point DIFFCLI_HOME at a disk with room"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = "point DIFFCLI_HOME at a folder you can write to" if writing else "check the folder's permissions"
    where = f": {exc.filename}" if exc.filename else ""
    return DiffcliError(f"{action}{where}: {reason}", hint)


@dataclass(frozen=True)
class ModelEntry:
    """One model folder in the registry."""

    name: str
    path: Path
    builtin: bool

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    def weights_path(self, which: str = "ema") -> Path:
        return self.path / (RAW_WEIGHTS if which == "raw" else WEIGHTS)

    @property
    def train_dir(self) -> Path:
        return self.path / "train"

    def config(self) -> ModelConfig:
        """The parsed config; DiffcliError naming the model and file when it cannot be read."""
        try:
            return ModelConfig.read(self.config_path, f"model {self.name!r}: {self.config_path}")
        except DiffcliError as exc:
            fix = (
                f"remove it with `diffcli models rm {self.name} --yes`, or fix the file"
                if not self.builtin
                else "reinstall diffcli"
            )
            raise DiffcliError(exc.message, exc.hint or fix) from None

    def pickles(self) -> list[Path]:
        """Pickle-format weight files in the folder (never loaded; reported instead)."""
        try:
            return sorted(p for p in self.path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES and p.is_file())
        except OSError:
            return []

    def size_bytes(self) -> int:
        """Bytes of the regular files in the folder (links are not followed; unreadable parts count 0)."""
        total = 0
        for folder, _dirs, files in os.walk(self.path, onerror=lambda exc: None):
            for name in files:
                try:
                    info = os.lstat(os.path.join(folder, name))
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    total += info.st_size
        return total

    def modified(self) -> float:
        """When the config or the weights last changed (the folder's time when neither can be read)."""

        def mtime(path: Path) -> float | None:
            try:
                return path.stat().st_mtime
            except OSError:
                return None

        files = [t for t in (mtime(self.config_path), mtime(self.weights_path())) if t is not None]
        return max(files) if files else (mtime(self.path) or 0.0)


class Registry:
    """Names -> model folders, the default model, and the shared data and cache folders."""

    def __init__(self, root: Path | None = None, builtin_dir: Path | None = None) -> None:
        self.root = Path(root) if root is not None else registry_root()
        self.builtin_dir = builtin_dir if builtin_dir is not None else BUILTIN_DIR

    # ----- folders -----
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def data_dir(self) -> Path:
        """Where datasets go by default ($DIFFCLI_DATA overrides)."""
        from diffcli.home import data_dir

        return data_dir(self.root)

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def settings_path(self) -> Path:
        return self.root / "settings.json"

    def check_root(self) -> None:
        """A clear error when the registry folder (or its models/) exists but is not a folder."""
        where = "DIFFCLI_HOME" if os.environ.get("DIFFCLI_HOME") else "the registry folder"
        for path in (self.root, self.models_dir):
            try:
                info = path.stat()
            except FileNotFoundError:
                return
            except OSError as exc:
                raise os_failure(f"cannot read {where}", exc, writing=False) from None
            if not stat.S_ISDIR(info.st_mode):
                what = f"{where} {path}" if path == self.root else f"{path} (inside {where})"
                raise DiffcliError(
                    f"{what} is a file, not a folder", "point DIFFCLI_HOME at a folder, or move the file out of the way"
                )

    # ----- listing and lookup -----
    def entries(self) -> list[ModelEntry]:
        """Every model, user models first shadowing built-ins of the same name, sorted by name.

        A folder with a config.json is listed even when that config is broken (`ModelEntry.config`
        says why), so it can be shown and removed."""
        self.check_root()
        self.recover()
        found: dict[str, ModelEntry] = {}
        for base, builtin in ((self.builtin_dir, True), (self.models_dir, False)):
            if not base.is_dir():
                continue
            try:
                folders = sorted(base.iterdir())
            except OSError as exc:
                raise os_failure("cannot list the models", exc, writing=False) from None
            for folder in folders:
                if not folder.name.startswith(".") and folder.is_dir() and _has_config(folder):
                    found[folder.name] = ModelEntry(folder.name, folder, builtin)
        return [found[k] for k in sorted(found)]

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def get(self, name: str | None = None) -> ModelEntry:
        """The model called `name` (default: the default model); a clear error otherwise."""
        if name is None:
            name = self.default_name()
            if name is None:
                raise DiffcliError(
                    "no models are registered",
                    "train one with `diffcli train` or add one with `diffcli models import`",
                )
        for entry in self.entries():
            if entry.name == name:
                return entry
        known = ", ".join(self.names()) or "none"
        raise DiffcliError(f"no model named {name!r} (registered: {known})", "see `diffcli models list`")

    def recover(self) -> None:
        """Finish or undo what a killed writer left (models/transaction.py); runs on every listing."""
        transaction.recover(self.root, self.models_dir)

    def transaction(self, name: str, doing: str) -> transaction.ModelTransaction:
        """Model `name`'s lock and journaled changes; `doing` words a refusal ("importing it")."""
        validate_name(name)
        return transaction.ModelTransaction(self.root, self.models_dir, name, doing)

    def user_entry(self, name: str) -> ModelEntry:
        """The user-folder entry for `name` (whether or not it exists yet)."""
        return ModelEntry(validate_name(name), self.models_dir / name, builtin=False)

    # ----- default -----
    def _settings(self) -> dict:
        try:
            return json.loads(self.settings_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def default_name(self) -> str | None:
        """The user's chosen default if it still exists, else the built-in 'mnist', else the only model."""
        names = self.names()
        chosen = self._settings().get("default")
        if chosen in names:
            return chosen
        if FALLBACK_DEFAULT in names:
            return FALLBACK_DEFAULT
        return names[0] if len(names) == 1 else None

    def set_default(self, name: str) -> None:
        """Make `name` the default model (under its lock: it cannot be removed meanwhile)."""
        self.get(name)
        try:
            with self.transaction(name, "making it the default"):
                self.get(name)
                settings = self._settings()
                settings["default"] = name
                self.root.mkdir(parents=True, exist_ok=True)
                atomic_write_text(self.settings_path, json.dumps(settings, indent=2) + "\n")
        except OSError as exc:
            raise os_failure("cannot save the default model", exc) from None

    def update_config(self, name: str, change: Callable[[ModelConfig], None], doing: str) -> Path:
        """Change a user model's config.json under the model's lock, as every write of a model is made: the
        config is read afresh under the lock, changed by `change` and replaced atomically (a crash leaves
        the old or the new file). Refused while another process writes the model; returns the path."""
        try:
            with self.transaction(name, doing):
                entry = self.get(name)
                config = entry.config()
                change(config)
                atomic_write_text(entry.config_path, config.to_json())
                return entry.config_path
        except OSError as exc:
            raise os_failure(f"cannot update model {name!r}", exc) from None

    # ----- changes -----
    def remove(self, name: str) -> ModelEntry:
        """Delete a user model's folder, as one transaction: taken out of the registry in one rename (so
        a failure leaves the model whole), then deleted. Refused while another process writes it."""
        entry = self.get(name)
        if entry.builtin:
            raise DiffcliError(f"{name!r} is a built-in model and cannot be removed")
        try:
            with self.transaction(name, "removing it") as txn:
                entry = self.get(name)
                if entry.builtin:
                    raise DiffcliError(f"{name!r} is a built-in model and cannot be removed")
                txn.remove()
        except OSError as exc:
            raise os_failure(f"cannot remove model {name!r}", exc) from None
        return entry

    def export(self, name: str, destination: Path) -> Path:
        """Write config.json and the weights (not the training folder) into a .zip, atomically and with
        the mode a plain open() would give it."""
        entry = self.get(name)
        entry.config()
        if destination.is_dir():
            destination = destination / f"{name}.zip"
        refuse_inside_home(destination, "the export")
        files = [entry.config_path] + [p for p in (entry.weights_path("ema"), entry.weights_path("raw")) if p.exists()]
        if not entry.weights_path("ema").exists():
            raise DiffcliError(f"model {name!r} has no {WEIGHTS} to export")
        try:
            with (
                atomic_writer(destination, "wb") as handle,
                zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as archive,
            ):
                for path in files:
                    archive.write(path, f"{name}/{path.name}")
        except OSError as exc:  # reading the model's own files
            raise os_failure(f"cannot export model {name!r}", exc, writing=False) from None
        return destination

    def import_model(
        self,
        source: Path,
        name: str | None = None,
        force: bool = False,
        validate: Callable[[ModelEntry], None] | None = None,
    ) -> ModelEntry:
        """Copy a model folder or an exported .zip into the registry, checking it loads first.

        Only the model's regular files are copied (see importing.py), each weights file no larger than
        the architecture in its config.json can need (checked before it is copied), into a staging
        folder that is removed on every exit path, SIGTERM included. `validate(entry)` is called on the
        staged copy (the loader's check of each weights file); nothing is registered if it fails. The
        model is put in place as one transaction under its lock (transaction.py): a model already there
        is replaced only with `force`, and is deleted only once the new one is in place.
        """
        from diffcli.models import importing
        from diffcli.signals import Terminated, sigterm_raises

        if name is not None:
            validate_name(name)
        try:
            if not source.exists():
                raise DiffcliError(f"{source}: no such file or folder")
            is_folder = source.is_dir()
            # A regular file before is_zipfile opens it: a FIFO or a device would block or never end.
            if not is_folder and (not source.is_file() or not zipfile.is_zipfile(source)):
                raise DiffcliError(f"{source} is neither a model folder nor a .zip exported by `diffcli models export`")
        except OSError as exc:
            raise os_failure(f"cannot read {source}", exc, writing=False) from None
        self.check_root()
        staging = transaction.Staging(self.models_dir)
        with sigterm_raises() as guard, contextlib.ExitStack() as held:
            try:
                if name is not None:  # a model being written by another process is refused before any copying
                    held.enter_context(self.transaction(name, "importing it"))
                with staging as folder:
                    try:
                        stage = importing.stage_folder if is_folder else importing.stage_zip
                        staged = stage(source, folder, lambda config: weights_ceiling(config, f"{source}: {CONFIG}"))
                        if staged.pickles and not (folder / WEIGHTS).exists():
                            raise DiffcliError(
                                f"{source} holds {staged.pickles[0]}, a pickle; diffcli never unpickles model files"
                                " (they can run code)",
                                "convert the weights to safetensors first",
                            )
                        try:
                            config = ModelConfig.read(folder / CONFIG, f"{source}: {CONFIG}")
                        except DiffcliError as exc:
                            raise DiffcliError(exc.message, exc.hint or f"fix {CONFIG} and import again") from None
                        name = validate_name(name or config.name)
                        if validate is not None:
                            validate(ModelEntry(name, folder, builtin=False))
                        config.name = name
                        atomic_write_text(folder / CONFIG, config.to_json())
                    except (DiffcliError, OSError) as exc:
                        raise staging.reword(exc, source) from None
                    with self.transaction(name, "importing it") as txn:
                        guard.hold()  # from here a SIGTERM waits: the model is either in place or not
                        txn.put(folder, force, "replace it with `force`, or import it under another `name`")
                return self.user_entry(name)
            except OSError as exc:
                inside = bool(exc.filename) and Path(str(exc.filename)).resolve().is_relative_to(self.root.resolve())
                raise os_failure(f"cannot import {source}", exc, writing=inside or not exc.filename) from None
            except Terminated:
                raise Terminated(f"terminated (SIGTERM) while importing {source}; nothing was registered") from None
            finally:
                guard.hold()


def weights_ceiling(config_path: Path, label: str) -> int | None:
    """The most bytes a weights file of the model `config_path` describes can need: every tensor of its
    network in float64 plus a generous header; None for a model without weights of its own (a pipeline).
    Checked against a file's declared size before it is copied, so a small zip cannot unpack to gigabytes."""
    config = ModelConfig.read(config_path, label)
    if config.kind != "unet":
        return None
    import torch

    from diffcli.models.networks import build_network

    with torch.device("meta"):  # shapes only: nothing is allocated
        tensors = list(build_network(config).state_dict().values())
    return sum(t.numel() for t in tensors) * 8 + 1024 * 1024 + 1024 * len(tensors)


def _has_config(folder: Path) -> bool:
    """Whether a model folder has a config.json (True when that cannot be told: it shows as broken)."""
    try:
        return (folder / CONFIG).exists()
    except OSError:
        return True


def describe_age(timestamp: float) -> str:
    """'3 minutes ago'-style age for listings."""
    seconds = max(0, time.time() - timestamp)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"
