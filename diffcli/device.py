"""`--device auto|cpu|cuda|mps`: pick the accelerator when there is one, with clear errors otherwise."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from diffcli.errors import UsageError

GIB = 1024**3

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
OFFLOAD_CHOICES = ("auto", "none", "model", "sequential")  # text-to-image models' CPU offload
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def resolve_device(name: str = "auto"):
    """A torch.device for the user's choice (`cuda:1` is accepted too)."""
    import torch

    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise UsageError(f"unknown device {name!r}", f"choose one of {', '.join(DEVICE_CHOICES)}")
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise UsageError("`device` cuda, but torch sees no CUDA GPU", "use `device` cpu (or auto)")
    if base == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise UsageError(
            "`device` mps, but this machine has no Metal GPU available to torch", "use `device` cpu (or auto)"
        )
    return torch.device(name)


def cpu_has_native_bf16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU computes in bfloat16 natively (AVX512-BF16 or AMX-BF16). Without those
    instructions oneDNN emulates bf16, which is no faster than fp32. Reads Linux's /proc/cpuinfo;
    False wherever it cannot tell."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool(NATIVE_BF16_FLAGS & set(line.partition(":")[2].split()))
    return False


def resolve_precision(choice: str, device: Any) -> str:
    """Training precision for `choice` on `device` (a torch.device): `auto` is bf16 autocast on a CPU
    with native bf16, where it trains the default network at 1.4x the fp32 throughput to the same quality
    (docs/performance.md), and fp32 everywhere else (GPU precision is the user's choice: unmeasured here)."""
    if choice not in PRECISIONS:
        raise UsageError(f"unknown precision {choice!r}", f"choose one of {', '.join(PRECISIONS)}")
    if choice != "auto":
        return choice
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def describe_devices() -> dict[str, Any]:
    """CPU cores and RAM, the CUDA GPUs with their free memory, MPS: what `diffcli doctor` shows. Never
    raises: a broken torch or driver is reported in "error"."""
    info: dict[str, Any] = {
        "cpu_cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "cuda": [],
        "mps": False,
        "torch_cuda": None,
        "error": None,
    }
    try:
        import torch
    except Exception as exc:  # a broken torch install is exactly what doctor should report
        info["error"] = f"torch cannot be imported: {exc}"
        return info
    info["torch_cuda"] = torch.version.cuda
    try:
        if torch.cuda.is_available():
            for i in range(torch.cuda.device_count()):
                free, total = torch.cuda.mem_get_info(i)
                info["cuda"].append(
                    {
                        "index": i,
                        "name": torch.cuda.get_device_name(i),
                        "free_gib": round(free / GIB, 1),
                        "total_gib": round(total / GIB, 1),
                    }
                )
    except Exception as exc:  # driver mismatches raise at query time
        info["error"] = f"CUDA is present but cannot be queried: {str(exc).splitlines()[0]}"
    mps = getattr(torch.backends, "mps", None)
    info["mps"] = bool(mps is not None and mps.is_available())
    return info


def _ram_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB, 1)
    except (AttributeError, ValueError, OSError):
        return None
