"""Full resumable checkpoints: network, EMA, optimiser, step, epoch and every RNG state the loop uses.

Saved with torch.save and loaded with `torch.load(weights_only=True)`: only tensors, numbers, strings,
lists and dicts, so loading can never run code. Written atomically: a crash or a full disk leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from diffcli.errors import DiffcliError
from diffcli.io.atomic import atomic_writer

CHECKPOINT = "checkpoint.pt"
FORMAT = 1


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write `state` (plain containers of tensors and numbers) atomically."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    with atomic_writer(path, "wb") as handle:
        handle.write(buffer.getbuffer())


def load_checkpoint(path: Path, label: str) -> dict[str, Any]:
    """Read a checkpoint without unpickling arbitrary objects; DiffcliError naming the file otherwise."""
    if not path.is_file():
        raise DiffcliError(f"{label}: no checkpoint at {path}", "train without `resume` (add `force` to start over)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DiffcliError(f"{label}: {path} is not a readable diffcli checkpoint ({first[:200]})", "start over with `force`") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DiffcliError(f"{label}: {path} is not a diffcli checkpoint of format {FORMAT}", "start over with `force`")
    return state
