"""Adapters that expose any registered model through one interface, `LoadedModel`.

`load_model` is the only way commands get a model: it resolves the name in the registry, picks the
backend for the config's `kind`, and returns an object whose `net(x_t, t, cond)` is the engine's
denoiser.
"""

from __future__ import annotations

from diffcli.models.backends.base import LoadedModel, Prompt
from diffcli.models.registry import ModelEntry, Registry


def load_model(
    name: str | None = None,
    device: str = "auto",
    weights: str = "ema",
    registry: Registry | None = None,
    entry: ModelEntry | None = None,
    **options,
) -> LoadedModel:
    """Load a registry model by name (None: the default) onto a device ('auto', 'cpu', 'cuda', ...).

    weights: 'ema' (model.safetensors) or 'raw' (model-raw.safetensors) for our UNets.
    options: backend-specific settings (e.g. offload for text-to-image pipelines).
    """
    from diffcli.device import resolve_device

    entry = entry or (registry or Registry()).get(name)
    config = entry.config()
    if config.kind == "classifier":
        from diffcli.errors import DiffcliError

        raise DiffcliError(
            f"model {entry.name!r} is a classifier used by `diffcli eval`, not a generator",
            "pick a diffusion model (see `diffcli models list`)",
        )
    torch_device = resolve_device(device)
    if config.kind == "diffusers":
        from diffcli.models.backends.diffusers_pixel import DiffusersModel

        return DiffusersModel(entry, config, torch_device, **options)
    from diffcli.models.backends.unet import UNetModel

    return UNetModel(entry, config, torch_device, weights=weights)


__all__ = ["LoadedModel", "Prompt", "load_model"]
