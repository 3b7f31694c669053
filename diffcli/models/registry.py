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

import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from diffcli.errors import DiffcliError, UsageError
from diffcli.io.atomic import atomic_write_text
from diffcli.models.config import ModelConfig

BUILTIN_DIR = Path(__file__).with_name("builtin")
WEIGHTS = "model.safetensors"
RAW_WEIGHTS = "model-raw.safetensors"
CONFIG = "config.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")
FALLBACK_DEFAULT = "mnist"
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def registry_root() -> Path:
    """$DIFFCLI_HOME, else the platform's user data folder for diffcli."""
    env = os.environ.get("DIFFCLI_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("diffcli", appauthor=False))


def validate_name(name: str) -> str:
    """Model names are folder names: letters, digits, '-', '_' and '.', not starting with '.'."""
    if not name or name.startswith(".") or not set(name) <= NAME_CHARS or len(name) > 100:
        raise UsageError(f"invalid model name {name!r}", "use letters, digits, '-', '_' and '.' (not first)")
    return name


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
            raise DiffcliError(exc.message, exc.hint or "remove it with `diffcli models rm` or fix the file") from None

    def pickles(self) -> list[Path]:
        """Pickle-format weight files in the folder (never loaded; reported instead)."""
        return sorted(p for p in self.path.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES and p.is_file())

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())

    def modified(self) -> float:
        files = [self.config_path, self.weights_path()]
        return max((p.stat().st_mtime for p in files if p.exists()), default=self.path.stat().st_mtime)


class Registry:
    """Names -> model folders, the default model, and the shared data and cache folders."""

    def __init__(self, root: Optional[Path] = None, builtin_dir: Optional[Path] = None) -> None:
        self.root = Path(root) if root is not None else registry_root()
        self.builtin_dir = builtin_dir if builtin_dir is not None else BUILTIN_DIR

    # ----- folders -----
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def data_dir(self) -> Path:
        """Where datasets go by default ($DIFFCLI_DATA overrides)."""
        env = os.environ.get("DIFFCLI_DATA")
        return Path(env).expanduser() if env else self.root / "data"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def settings_path(self) -> Path:
        return self.root / "settings.json"

    # ----- listing and lookup -----
    def entries(self) -> list[ModelEntry]:
        """Every model, user models first shadowing built-ins of the same name, sorted by name."""
        found: dict[str, ModelEntry] = {}
        for base, builtin in ((self.builtin_dir, True), (self.models_dir, False)):
            if base.is_dir():
                for folder in sorted(base.iterdir()):
                    if folder.is_dir() and not folder.name.startswith(".") and (folder / CONFIG).exists():
                        found[folder.name] = ModelEntry(folder.name, folder, builtin)
        return [found[k] for k in sorted(found)]

    def names(self) -> list[str]:
        return [e.name for e in self.entries()]

    def get(self, name: Optional[str] = None) -> ModelEntry:
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

    def user_entry(self, name: str) -> ModelEntry:
        """The user-folder entry for `name` (whether or not it exists yet)."""
        return ModelEntry(validate_name(name), self.models_dir / name, builtin=False)

    # ----- default -----
    def _settings(self) -> dict:
        try:
            return json.loads(self.settings_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    def default_name(self) -> Optional[str]:
        """The user's chosen default if it still exists, else the built-in 'mnist', else the only model."""
        names = self.names()
        chosen = self._settings().get("default")
        if chosen in names:
            return chosen
        if FALLBACK_DEFAULT in names:
            return FALLBACK_DEFAULT
        return names[0] if len(names) == 1 else None

    def set_default(self, name: str) -> None:
        self.get(name)
        settings = self._settings()
        settings["default"] = name
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.settings_path, json.dumps(settings, indent=2) + "\n")

    # ----- changes -----
    def remove(self, name: str) -> ModelEntry:
        entry = self.get(name)
        if entry.builtin:
            raise DiffcliError(f"{name!r} is a built-in model and cannot be removed")
        shutil.rmtree(entry.path)
        return entry

    def export(self, name: str, destination: Path) -> Path:
        """Write config.json and the weights (not the training folder) into a .zip."""
        entry = self.get(name)
        entry.config()
        if destination.is_dir():
            destination = destination / f"{name}.zip"
        files = [entry.config_path] + [p for p in (entry.weights_path("ema"), entry.weights_path("raw")) if p.exists()]
        if not entry.weights_path("ema").exists():
            raise DiffcliError(f"model {name!r} has no {WEIGHTS} to export")
        parent = destination.parent if str(destination.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{destination.name}.", suffix=".tmp")
        os.close(fd)
        try:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for path in files:
                    archive.write(path, f"{name}/{path.name}")
            os.replace(tmp, destination)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            raise DiffcliError(f"could not write {destination}: {exc.strerror or exc}") from None
        return destination

    def import_model(self, source: Path, name: Optional[str] = None, force: bool = False, validate=None) -> ModelEntry:
        """Copy a model folder or an exported .zip into the registry, checking it loads first.

        `validate(entry)` is called on the staged copy (the loader's shape check); nothing is
        registered if it fails.
        """
        if not source.exists():
            raise DiffcliError(f"{source}: no such file or folder")
        self.models_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.models_dir, prefix=".import-"))
        try:
            folder = self._unpack(source, staging)
            staged = ModelEntry(name or folder.name, folder, builtin=False)
            pickles = staged.pickles()
            if pickles and not (folder / WEIGHTS).exists():
                raise DiffcliError(
                    f"{source} holds {pickles[0].name}, a pickle; diffcli never unpickles model files (they can run code)",
                    "convert the weights to safetensors first",
                )
            config = staged.config()
            name = validate_name(name or config.name or folder.name)
            if validate is not None:
                validate(staged)
            target = self.user_entry(name)
            if target.path.exists():
                if not force:
                    raise DiffcliError(f"a model named {name!r} already exists", "replace it with `force`, or import it under another `name`")
                shutil.rmtree(target.path)
            config.name = name
            atomic_write_text(folder / CONFIG, config.to_json())
            for p in staged.pickles():
                p.unlink()
            os.replace(folder, target.path)
            return target
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _unpack(self, source: Path, staging: Path) -> Path:
        folder = staging / "model"
        if source.is_dir():
            shutil.copytree(source, folder, ignore=shutil.ignore_patterns("train", ".*"))
            return folder
        if not zipfile.is_zipfile(source):
            raise DiffcliError(f"{source} is neither a model folder nor a .zip exported by `diffcli models export`")
        with zipfile.ZipFile(source) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            configs = [m for m in members if Path(m).name == CONFIG]
            if len(configs) != 1:
                raise DiffcliError(f"{source} should hold exactly one {CONFIG}, found {len(configs)}")
            prefix = str(Path(configs[0]).parent)
            folder.mkdir()
            for member in members:
                rel = Path(member).relative_to(prefix) if prefix != "." else Path(member)
                if len(rel.parts) != 1 or rel.name.startswith("."):
                    continue  # only the top-level files of the model folder; never paths that escape it
                with archive.open(member) as src, open(folder / rel.name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        return folder


def describe_age(timestamp: float) -> str:
    """'3 minutes ago'-style age for listings."""
    seconds = max(0, time.time() - timestamp)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"
