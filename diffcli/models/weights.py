"""Reading and writing network weights as safetensors, with errors that name the model and the file.

safetensors holds only tensors, so loading can never run code; pickle files are refused elsewhere. The
file is still untrusted: its header is read and checked first (each tensor's dtype, shape and byte
range against the file's size, the total against the memory available), the tensors are then read
without copying the whole file into memory, and NaN or infinite values are refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from diffcli import checks
from diffcli.errors import DiffcliError
from diffcli.io.atomic import atomic_writer


def save_weights(
    module_or_state: nn.Module | dict[str, torch.Tensor],
    path: Path,
    dtype: torch.dtype | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
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


DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "C64": 8,
}  # fmt: skip
MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
MAX_DIMS = 8
FIX = "retrain or re-import the model"


Shapes = dict[str, tuple[int, ...]]


def read_weights(path: Path, label: str, expected: Shapes | None = None) -> dict[str, torch.Tensor]:
    """Read a safetensors file; `label` (e.g. "model 'mnist'") prefixes any error. `expected` (the shapes
    of the network the file is for, networks.planned_shapes) is checked against the header first, and the
    file plus that network sized against the memory limit, before either is allocated."""
    if not path.is_file():
        raise DiffcliError(
            f"{label}: {path} is missing", "retrain it, re-import it, or remove it with `diffcli models rm`"
        )
    header = read_header(path, label)
    needed = sum(end - begin for begin, end in (entry["data_offsets"] for entry in header.values()))
    if expected is not None:
        check_shapes({key: tuple(entry["shape"]) for key, entry in header.items()}, expected, path, label)
        network = 4 * sum(math.prod(shape) for shape in expected.values())  # float32 parameters
        hint = "its config.json describes a network too large for this machine"
        checks.check_memory(needed + network, f"{label}: loading its network", hint)
    available = available_memory()
    if available is not None and needed > available:
        from diffcli.models.registry import describe_size

        raise DiffcliError(
            (
                f"{label}: {path} holds {describe_size(needed)} of weights, "
                f"more than the {describe_size(available)} of memory available"
            ),
            "close other programs, or load it on a machine with more memory",
        )
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type for any malformed header or data
        raise DiffcliError(
            f"{label}: {path} is not a valid safetensors file ({str(exc).splitlines()[0][:200]})", FIX
        ) from None
    for key, tensor in state.items():
        if (tensor.is_floating_point() or tensor.is_complex()) and not bool(torch.isfinite(tensor).all()):
            raise DiffcliError(
                f"{label}: {path} holds NaN or infinite values (in {key!r})",
                "the training diverged or the file is damaged; retrain the model, or re-import a good copy",
            )
    return state


def read_header(path: Path, label: str) -> dict[str, dict[str, Any]]:
    """The tensors a safetensors file declares ({name: {dtype, shape, data_offsets}}), checked against
    the file: a known dtype, a shape, and a byte range inside the data that fits the shape."""

    def bad(problem: str) -> DiffcliError:
        return DiffcliError(f"{label}: {path} is not a valid safetensors file ({problem})", FIX)

    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise bad("shorter than its 8-byte header length")
            (length,) = struct.unpack("<Q", prefix)
            if length > min(MAX_HEADER_BYTES, size - 8):
                raise bad(f"its header claims {length} bytes, but the file has {size} bytes")
            raw = handle.read(length)
    except OSError as exc:
        raise DiffcliError(f"{label}: {path} cannot be read ({os.strerror(exc.errno) if exc.errno else exc})") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise bad("its header is not JSON") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    data_size = size - 8 - length
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    for name, entry in tensors.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("dtype"), str)
            or not isinstance(entry.get("shape"), list)
            or not isinstance(entry.get("data_offsets"), list)
        ):
            raise bad(f"tensor {name!r} lacks dtype, shape or data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in DTYPE_BYTES:
            raise bad(f"tensor {name!r} has the unsupported dtype {dtype[:20]!r}")
        if len(shape) > MAX_DIMS or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise bad(f"tensor {name!r} has the shape {str(shape)[:80]}")
        if (
            len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]
        ):
            raise bad(f"tensor {name!r} has the byte range {str(offsets)[:80]}")
        declared = math.prod(shape) * DTYPE_BYTES[dtype]
        if offsets[1] > data_size or offsets[1] - offsets[0] != declared:
            raise bad(
                f"tensor {name!r} claims {declared} bytes at {offsets}, but the file holds {data_size} bytes of data"
            )
    return tensors


def available_memory() -> int | None:
    """Bytes of memory the system can still give (Linux MemAvailable; None when unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def load_into(module: nn.Module, state: dict[str, torch.Tensor], path: Path, label: str) -> None:
    """Copy `state` into `module`, refusing any missing, extra, differently-shaped or differently-typed
    tensor (a float parameter stored as int64, bool or complex, say)."""
    expected = module.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    check_shapes(shapes, {k: tuple(v.shape) for k, v in expected.items()}, path, label)
    for key, value in expected.items():
        if not _same_kind(state[key].dtype, value.dtype):
            raise DiffcliError(
                (
                    f"{label}: weights in {path} have an unexpected type: "
                    f"{key!r} is {_dtype_name(state[key].dtype)}, {_dtype_name(value.dtype)} expected"
                ),
                "the file was not written by diffcli; retrain or re-import the model",
            )
    with torch.no_grad():
        for key, value in expected.items():
            value.copy_(state[key].to(value.dtype))


def check_shapes(found: Shapes, expected: Shapes, path: Path, label: str) -> None:
    """Refuse weights (`found`: name -> shape, from a header or a state dict) that do not fit a network
    (`expected`): a differently-shaped, missing or extra tensor."""
    missing = [k for k in expected if k not in found]
    extra = [k for k in found if k not in expected]
    wrong = [(k, found[k], want) for k, want in expected.items() if k in found and tuple(found[k]) != tuple(want)]
    if wrong:
        k, got, want = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise DiffcliError(
            (
                f"{label}: weights in {path} do not fit the architecture in config.json: "
                f"{k!r} is {list(got)} in the file, {list(want)} expected{more}"
            ),
            "the weights and config.json come from different models",
        )
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        count = len(missing) + len(extra)
        raise DiffcliError(
            (
                f"{label}: weights in {path} do not fit the architecture in config.json "
                f"({what}{f' and {count - 1} more' if count > 1 else ''})"
            ),
            "the weights and config.json come from different models",
        )


def _same_kind(got: torch.dtype, want: torch.dtype) -> bool:
    """float for float (any precision), integer for integer (BatchNorm's counter); never bool or complex."""
    if got == torch.bool or got.is_complex or want.is_complex:
        return False
    return got.is_floating_point == want.is_floating_point


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def weights_fingerprint(module: torch.nn.Module) -> str:
    """sha256 over the state dict (names and bytes): changes whenever the network is
    retrained: the key of caches derived from a network (FID statistics, reflow pairs) and a teacher's identity."""
    digest = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        digest.update(key.encode("utf-8"))
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
