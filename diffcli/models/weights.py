"""Reading and writing network weights as safetensors, with errors that name the model and the file.

safetensors holds only tensors, so loading can never run code; pickle files are refused elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
import torch.nn as nn

from diffcli.errors import DiffcliError
from diffcli.io.atomic import atomic_writer


def save_weights(module_or_state: nn.Module | dict[str, torch.Tensor], path: Path, dtype: Optional[torch.dtype] = None, metadata: Optional[dict[str, str]] = None) -> None:
    """Write a state dict atomically as safetensors (optionally cast, e.g. to float16 to ship small)."""
    from safetensors.torch import save

    state = module_or_state.state_dict() if isinstance(module_or_state, nn.Module) else module_or_state
    tensors = {}
    for key, value in state.items():
        value = value.detach().to("cpu")
        if dtype is not None and value.is_floating_point():
            value = value.to(dtype)
        tensors[key] = value.contiguous()
    with atomic_writer(path, "wb") as handle:
        handle.write(save(tensors, metadata=metadata))


def read_weights(path: Path, label: str) -> dict[str, torch.Tensor]:
    """Read a safetensors file; `label` (e.g. "model 'mnist'") prefixes any error."""
    if not path.is_file():
        raise DiffcliError(f"{label}: {path} is missing", "retrain it, re-import it, or remove it with `diffcli models rm`")
    from safetensors.torch import load

    try:
        return load(path.read_bytes())
    except Exception as exc:  # safetensors raises its own error type for any malformed header or data
        raise DiffcliError(f"{label}: {path} is not a valid safetensors file ({str(exc).splitlines()[0]})", "retrain or re-import the model") from None


def load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path, label: str) -> None:
    """Copy `state` into `module`, refusing any missing, extra or differently-shaped tensor."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    wrong = [(k, tuple(state[k].shape), tuple(v.shape)) for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if wrong:
        k, got, want = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise DiffcliError(
            f"{label}: weights in {path} do not fit the architecture in config.json: {k!r} is {list(got)} in the file, {list(want)} expected{more}",
            "the weights and config.json come from different models",
        )
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        count = len(missing) + len(extra)
        raise DiffcliError(
            f"{label}: weights in {path} do not fit the architecture in config.json ({what}{f' and {count - 1} more' if count > 1 else ''})",
            "the weights and config.json come from different models",
        )
    with torch.no_grad():
        for key, value in expected.items():
            value.copy_(state[key].to(value.dtype))
