"""`--device auto|cpu|cuda|mps`: pick the accelerator when there is one, with clear errors otherwise."""

from __future__ import annotations

from diffcli.errors import UsageError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


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
        raise UsageError("--device cuda but torch sees no CUDA GPU", "use --device cpu (or auto)")
    if base == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise UsageError("--device mps but this machine has no Metal GPU available to torch", "use --device cpu (or auto)")
    return torch.device(name)
