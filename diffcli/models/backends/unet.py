"""Our own networks (UNet, course UNet) from a registry folder: config.json + safetensors weights."""

from __future__ import annotations

from typing import Any

import torch

from diffcli.diffusion.samplers import OutputSpec
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.errors import DiffcliError
from diffcli.models.backends.base import LoadedModel
from diffcli.models.config import ModelConfig
from diffcli.models.networks import build_network
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
                    f"{label} holds {pickles[0].name}, a pickle file; diffcli never unpickles model files (they can run code)",
                    f"convert the weights to {WEIGHTS} (safetensors)",
                )
            if weights == "raw":
                raise DiffcliError(f"{label} has no raw weights ({path.name})", "use `weights` ema")
        self.network = build_network(config)
        load_into(self.network, read_weights(path, label), path, label)
        self.network.to(device).eval()
        self.schedule = NoiseSchedule.from_config(config.schedule)
        lo, hi = config.pixel_range
        self.spec = OutputSpec(prediction=config.prediction, clip=(lo, hi))

    @classmethod
    def from_network(cls, entry: ModelEntry, config: ModelConfig, network: torch.nn.Module, device: torch.device) -> "UNetModel":
        """Wrap a network already in memory (training previews and sample grids) without reading files."""
        model = cls.__new__(cls)
        model.entry, model.config, model.device = entry, config, device
        model.network = network
        model.schedule = NoiseSchedule.from_config(config.schedule)
        lo, hi = config.pixel_range
        model.spec = OutputSpec(prediction=config.prediction, clip=(lo, hi))
        return model

    def net(self, x: torch.Tensor, t: torch.Tensor, cond: Any) -> torch.Tensor:
        return self.network(x, t, cond)

    def denoise_once(self, x_noisy: torch.Tensor) -> torch.Tensor:
        if self.is_diffusion:
            return super().denoise_once(x_noisy)
        with torch.no_grad():
            return self.network(x_noisy)
