"""What a model folder holds and what a model may be called: the names the registry, its transactions and
imports share (so none of them imports another for a constant)."""

from __future__ import annotations

from diffcli.errors import UsageError

WEIGHTS = "model.safetensors"
RAW_WEIGHTS = "model-raw.safetensors"
CONFIG = "config.json"
PICKLE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle")
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def validate_name(name: str) -> str:
    """Model names are folder names: letters, digits, '-', '_' and '.', not starting with '.'."""
    if not isinstance(name, str) or not name or name.startswith(".") or not set(name) <= NAME_CHARS or len(name) > 100:
        raise UsageError(f"invalid model name {name!r}", "use letters, digits, '-', '_' and '.' (not first)")
    return name


def describe_size(n: float) -> str:
    """'1.5 GiB'-style sizes for messages."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"
