"""Full resumable checkpoints: network, EMA, optimiser, step, epoch and every RNG state the loop uses.

Saved with torch.save and loaded with `torch.load(weights_only=True)`: only tensors, numbers, strings,
lists and dicts, so loading can never run code. Written atomically: a crash or a full disk leaves
the previous checkpoint intact. What is loaded is checked against CHECKPOINT_SCHEMA (the keys the
trainer reads, with their types) before anyone indexes into it. `trainer_state` and `restore_trainer`
map a Trainer (training/trainer.py, which imports this module) to those keys and back.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from diffcli import schema
from diffcli.errors import DiffcliError
from diffcli.io.atomic import atomic_writer
from diffcli.schema import AnyJson, Field, Float, Int, List, Mapping, Nullable, Record, optional

CHECKPOINT = "checkpoint.pt"
FORMAT = 1
COUNT = Int(0, 2**62)


class Tensor(schema.Spec):
    """A torch tensor, optionally of one dtype."""

    def __init__(self, dtype: Any = None) -> None:
        self.dtype = dtype

    @property
    def what(self) -> str:  # type: ignore[override]
        return f"a tensor of {str(self.dtype).replace('torch.', '')}" if self.dtype is not None else "a tensor"

    def check(self, value: Any, path: str) -> None:
        if not isinstance(value, torch.Tensor) or (self.dtype is not None and value.dtype != self.dtype):
            got = (
                f"a tensor of {str(value.dtype).replace('torch.', '')}"
                if isinstance(value, torch.Tensor)
                else schema.show(value)
            )
            raise schema.Invalid(path, f"must be {self.what}, got {got}")


STATE_DICT = Mapping(Tensor())
CHECKPOINT_SCHEMA = Record(
    {
        "format": Field(Int(FORMAT, FORMAT)),
        "settings": Field(
            Record(
                {"sample_epochs": optional(List(Int(0, 2**31))), "pixel_range": optional(List(Float(), 2, 2))},
                extra=AnyJson(),
            )
        ),
        "network": Field(STATE_DICT),
        "ema": optional(Nullable(STATE_DICT)),
        "optimizer": Field(
            Record(
                {"state": Field(AnyJson(object_only=True)), "param_groups": Field(List(AnyJson(object_only=True)))},
                extra=AnyJson(),
            )
        ),
        "rng": Field(Tensor(torch.uint8)),
        "step": Field(COUNT),
        "epoch": Field(COUNT),
        "position": Field(COUNT),
        # One entry per step; resuming reads each entry's epoch and loss (NaN when training diverged).
        "history": optional(
            List(
                Record(
                    {"step": Field(COUNT), "epoch": Field(COUNT), "train_loss": Field(Float(finite=False))},
                    extra=AnyJson(),
                ),
                max_length=10_000_000,
            )
        ),
        "wall_seconds": optional(Float(0.0)),
        "images_seen": optional(COUNT),
    },
    extra=AnyJson(),
)


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
        raise DiffcliError(
            f"{label}: {path} is not a readable diffcli checkpoint ({first[:200]})", "start over with `force`"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise DiffcliError(f"{label}: {path} is not a diffcli checkpoint of format {FORMAT}", "start over with `force`")
    schema.validate(
        CHECKPOINT_SCHEMA, state, f"{label}: checkpoint {path} is incomplete or damaged", "start over with `force`"
    )
    return state


def trainer_state(trainer: Any) -> dict[str, Any]:
    """Everything a Trainer needs to continue exactly where it is (what `restore_trainer` reads back)."""
    return {
        "settings": trainer.settings.to_dict(),
        "network": trainer.network.state_dict(),
        "ema": trainer.ema.state_dict() if trainer.ema else None,
        "optimizer": trainer.optimizer.state_dict(),
        "rng": trainer.draws.rng.get_state(),
        "step": trainer.step,
        "epoch": trainer.epoch,
        "position": trainer.position,
        "history": trainer.history,
        "wall_seconds": trainer.wall_seconds,
        "images_seen": trainer.images_seen,
    }


def restore_trainer(trainer: Any) -> None:
    """Load the trainer's checkpoint into it: weights, EMA, optimiser, the draws' generator and counters.
    A checkpoint of another recipe (other shapes, other keys) is a DiffcliError naming the file."""
    path, name = trainer.checkpoint_path, trainer.entry.name
    state = load_checkpoint(path, f"model {name!r}")
    try:
        trainer.network.load_state_dict(state["network"])
        if trainer.ema is not None:
            trainer.ema.load_state_dict(state["ema"] if state.get("ema") is not None else state["network"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.draws.rng.set_state(state["rng"])
    except (KeyError, RuntimeError, ValueError) as exc:
        why = str(exc).splitlines()[0][:160]
        message = f"model {name!r}: {path} does not match this recipe ({why})"
        raise DiffcliError(message, "start over with `force`") from None
    trainer.step, trainer.epoch, trainer.position = int(state["step"]), int(state["epoch"]), int(state["position"])
    trainer.history = list(state.get("history", []))
    trainer.wall_seconds = float(state.get("wall_seconds", 0.0))
    trainer.images_seen = int(state.get("images_seen", 0))
