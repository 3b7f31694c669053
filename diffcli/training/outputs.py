"""What a training run produces for the registry and for its caller: the model's config.json and the
run's result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from diffcli.data import ImageDataset
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.models.config import MNIST_ALIASES, ModelConfig
from diffcli.training.recipe import TrainSettings


@dataclass
class TrainResult:
    """What a finished (or stopped) run reports."""

    model: str
    path: str
    epoch: int  # the epoch the last step belongs to (1-based), also when --max-steps stops mid-epoch
    epochs_done: int
    step: int
    total_steps: int
    completed: bool
    train_loss: float | None  # mean over the last epoch's steps
    val_loss: float | None
    # This session's figures (a resumed run's earlier sessions are in the model's config.json):
    seconds: float  # wall time of the session: steps, validation, sample grids, saving
    training_seconds: float  # the session's optimiser steps alone (what images_per_second is measured on)
    images_per_second: float
    history: list[dict[str, Any]] = field(default_factory=list)


def build_config(name: str, settings: TrainSettings, data: ImageDataset) -> ModelConfig:
    """The model config.json a training run produces (everything `sample` needs)."""
    channels, size = int(data.images.shape[1]), int(data.images.shape[2])
    schedule = NoiseSchedule(settings.schedule_kind, settings.timesteps)
    labels = list(data.label_names) if settings.cond == "class" else []
    aliases = MNIST_ALIASES if labels == [str(i) for i in range(10)] else {}
    default_steps = min(settings.sample_steps or settings.timesteps, settings.timesteps)  # a short schedule caps it
    return ModelConfig(
        name=name,
        kind="unet",
        architecture=dict(settings.architecture),
        image={"channels": channels, "size": size, "range": list(settings.pixel_range)},
        schedule=schedule.to_config(),
        prediction=settings.prediction,
        objective="denoise" if settings.objective == "denoise" else "diffusion",
        conditioning={
            "type": settings.cond,
            "labels": labels,
            "aliases": aliases,
            "null_class": settings.cond == "class" and settings.p_uncond > 0,
        },
        sampling={}
        if settings.objective == "denoise"
        else {
            "sampler": settings.sampler,
            "steps": default_steps,
            "guidance": settings.guidance if settings.cond == "class" and settings.p_uncond > 0 else 1.0,
            **({"guidance_interval": list(settings.guidance_interval)} if settings.guidance_interval else {}),
        },
        dataset=data.describe(),
        training={"status": "training", "settings": settings.to_dict(), "noise_sigma": settings.noise_sigma},
        distillation=dict(settings.distillation or {}),
        description=describe(settings, data),
    )


def describe(settings: TrainSettings, data: ImageDataset) -> str:
    """The config's one-line description of what the run makes."""
    plan = settings.distillation
    if plan:
        return f"{plan['steps']}-step student of {plan['teacher']!r} ({plan['method']} distillation)"
    return f"{settings.cond}-conditioned {settings.objective} model trained on {data.name} ({settings.preset} recipe)"
