"""Build the network a config describes (`architecture.type`: unet or course)."""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from diffcli.errors import DiffcliError
from diffcli.models.config import ModelConfig

ARCHITECTURES = ("unet", "course")


def build_network(config: ModelConfig) -> nn.Module:
    """A freshly initialised network for `config` (weights are loaded separately)."""
    arch: dict[str, Any] = dict(config.architecture)
    kind = arch.pop("type", "unet")
    cond = config.cond_type
    num_classes = len(config.labels) if cond == "class" else None
    time_conditioned = cond in ("class", "time")
    timesteps = int(config.schedule.get("timesteps", 1000))
    try:
        if kind == "unet":
            from diffcli.models.unet import UNet

            return UNet(
                in_channels=config.channels,
                num_classes=num_classes,
                time_conditioned=time_conditioned,
                timesteps=timesteps,
                width=int(arch.get("width", 32)),
                mults=tuple(arch.get("mults", (1, 2, 2))),
                blocks=int(arch.get("blocks", 1)),
                attention=tuple(arch.get("attention", ())),
                groups=int(arch.get("groups", 8)),
                dropout=float(arch.get("dropout", 0.0)),
                patch=int(arch.get("patch", 1)),
            )
        if kind == "course":
            from diffcli.models.course_unet import CourseUNet

            return CourseUNet(
                in_channels=config.channels,
                width=int(arch.get("width", 64)),
                num_classes=num_classes,
                time_conditioned=time_conditioned,
                timesteps=timesteps,
                # A config without the key has weights in the first layout (the width kept through the resampling).
                widen_in=str(arch.get("widen_in", "convblock")),
            )
    except (TypeError, ValueError) as exc:
        raise DiffcliError(f"model {config.name!r}: config.json's architecture is invalid ({exc})") from None
    raise DiffcliError(f"model {config.name!r}: unknown architecture type {kind!r} (expected {', '.join(ARCHITECTURES)})")


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
