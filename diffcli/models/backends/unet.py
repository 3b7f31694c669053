"""Our own networks (UNet, course UNet) from a registry folder: config.json + safetensors weights."""

from __future__ import annotations

from typing import Any

import torch

from diffcli import checks
from diffcli.diffusion.samplers import OutputSpec
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.errors import DiffcliError
from diffcli.models.backends.base import LoadedModel
from diffcli.models.config import ModelConfig
from diffcli.models.networks import activation_bytes, build_network, planned_shapes
from diffcli.models.registry import WEIGHTS, ModelEntry
from diffcli.models.weights import load_into, read_weights


class UNetModel(LoadedModel):
    """A diffcli-trained network, always in eval mode (BatchNorm variants included)."""

    def __init__(self, entry: ModelEntry, config: ModelConfig, device: torch.device, weights: str = "ema") -> None:
        self.entry, self.config, self.device = entry, config, device
        label = f"model {entry.name!r}"
        path = entry.weights_path(weights)
        if weights not in ("ema", "raw"):
            raise DiffcliError(f"unknown weights {weights!r}", "use `weights` ema or raw")
        if not path.exists():
            pickles = entry.pickles()
            if pickles:
                raise DiffcliError(
                    (
                        f"{label} holds {pickles[0].name}, a pickle file; "
                        "diffcli never unpickles model files (they can run code)"
                    ),
                    f"convert the weights to {WEIGHTS} (safetensors)",
                )
            if weights == "raw":
                raise DiffcliError(f"{label} has no raw weights ({path.name})", "use `weights` ema")
        # Sized from config.json before anything is built: one image's forward pass (twice: guidance runs
        # the conditional and unconditional halves), then the weights' header against the planned network.
        size = f"{config.size}x{config.size}"
        hint = "its config.json's image.size is too large"
        checks.check_memory(self.forward_bytes(2), f"{label}: one {size} image", hint)
        state = read_weights(path, label, planned_shapes(config))
        self.network = build_network(config)
        load_into(self.network, state, path, label)
        self.network.to(device).eval()
        self.schedule = NoiseSchedule.from_config(config.schedule)
        lo, hi = config.pixel_range
        self.spec = OutputSpec(prediction=config.prediction, clip=(lo, hi))

    @classmethod
    def from_network(
        cls, entry: ModelEntry, config: ModelConfig, network: torch.nn.Module, device: torch.device
    ) -> UNetModel:
        """Wrap a network already in memory (training previews and sample grids) without reading files."""
        model = cls.__new__(cls)
        model.entry, model.config, model.device = entry, config, device
        model.network = network
        model.schedule = NoiseSchedule.from_config(config.schedule)
        lo, hi = config.pixel_range
        model.spec = OutputSpec(prediction=config.prediction, clip=(lo, hi))
        return model

    def forward_bytes(self, batch: int) -> int:
        return activation_bytes(self.config, batch)

    def net(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        return self.network(x, t, cond)

    def denoise_once(self, x_noisy: torch.Tensor) -> torch.Tensor:
        if self.is_diffusion:
            return super().denoise_once(x_noisy)
        with torch.no_grad():
            return self.network(x_noisy)
