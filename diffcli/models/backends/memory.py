"""Fitting large pipeline components on a GPU: `--offload auto|none|model|sequential` and clear
out-of-memory errors.

- none: the component lives on the GPU for the whole run (fastest).
- model: it sits in CPU memory and moves to the GPU as a whole when it runs, and back when another large
  component needs the room (accelerate's `cpu_offload_with_hook`, what diffusers' enable_model_cpu_offload
  uses): at most one big component on the GPU at a time.
- sequential: weights stay in CPU memory and stream to the GPU one sub-module at a time (accelerate's
  `cpu_offload`, diffusers' enable_sequential_cpu_offload): least GPU memory, much slower.
- auto: none when everything the run needs fits in the free GPU memory (torch.cuda.mem_get_info) with
  headroom, model when each component fits alone, sequential otherwise.

Offloading only applies to CUDA; on the CPU (and MPS) every mode runs the component in place.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from diffcli.device import OFFLOAD_CHOICES
from diffcli.errors import DiffcliError, UsageError

GIB = 1024**3
HEADROOM = int(1.5 * GIB)  # activations, the CUDA context and the allocator's slack at IF's 64 px


def check_offload(value: str) -> str:
    """Validate an --offload value."""
    if value not in OFFLOAD_CHOICES:
        raise UsageError(f"unknown `offload` {value!r}", f"choose one of {', '.join(OFFLOAD_CHOICES)}")
    return value


def module_bytes(module: torch.nn.Module) -> int:
    """Bytes of a module's parameters and buffers."""
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def free_cuda_memory(device: torch.device) -> int | None:
    """Free bytes on a CUDA device, or None when it cannot be asked."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    try:
        free, _total = torch.cuda.mem_get_info(device)
    except (RuntimeError, AssertionError):
        return None
    return int(free)


def choose_offload(requested: str, device: torch.device, need: int, others: int = 0) -> str:
    """The offload mode for a component of `need` bytes; `others` is what else the run will want on the
    GPU (e.g. the stage-II upscaler). 'none' off CUDA. A DiffcliError for 'none' when it cannot fit."""
    if device.type != "cuda":
        return "none"
    free = free_cuda_memory(device)
    if requested == "auto":
        if free is None or free >= need + others + HEADROOM:
            return "none"
        return "model" if free >= need + HEADROOM else "sequential"
    if requested == "none" and free is not None and free < need:
        raise DiffcliError(
            f"the GPU has {free / GIB:.1f} GiB free but the weights alone need {need / GIB:.1f} GiB",
            "try `offload` sequential (or auto), or a smaller model",
        )
    return requested


def place(module: torch.nn.Module, device: torch.device, mode: str, what: str) -> Any:
    """Put `module` where `mode` says; returns accelerate's hook for 'model' (call .offload() to free)."""
    if mode == "none" or device.type != "cuda":
        with oom_guard(f"loading {what}", mode):
            module.to(device)
        return None
    try:
        import accelerate
    except ImportError:
        raise DiffcliError(
            f"`offload` {mode} needs the accelerate package",
            "install with `pip install 'diffcli[hub]'`, or use `offload` none",
        ) from None
    if mode == "model":
        _, hook = accelerate.cpu_offload_with_hook(module, execution_device=device)
        return hook
    accelerate.cpu_offload(module, execution_device=device)
    return None


def release(*modules: Any) -> None:
    """Drop references the caller no longer holds and give cached GPU memory back."""
    del modules
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextmanager
def oom_guard(what: str, mode: str | None) -> Iterator[None]:
    """Turn a CUDA (or CPU) out-of-memory failure into a one-line error naming the flag to try."""
    try:
        yield
    except torch.cuda.OutOfMemoryError:
        release()
        hint = (
            "use fewer images (`n`) or `device` cpu"
            if mode == "sequential"
            else "try `offload` sequential (slower, least GPU memory), fewer images (`n`), or `device` cpu"
        )
        raise DiffcliError(f"the GPU ran out of memory {what}", hint) from None
    except (MemoryError, RuntimeError) as exc:
        text = str(exc)
        if isinstance(exc, MemoryError) or "can't allocate memory" in text or "DefaultCPUAllocator" in text:
            raise DiffcliError(
                f"not enough CPU memory {what}", "close other programs, use a smaller model (e.g. IF-I-M), or a GPU"
            ) from None
        raise
