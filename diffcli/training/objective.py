"""The training objective: one batch's per-sample loss for the recipe's objective (noise, v or flow
prediction on a noised image, or the single-step denoiser's clean image), with min-SNR weighting."""

from __future__ import annotations

import torch
import torch.nn as nn

from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.training.recipe import TrainSettings

MIN_SNR_GAMMA = 5.0


def objective_loss(
    settings: TrainSettings,
    schedule: NoiseSchedule,
    prediction: str,
    model: nn.Module,
    x0: torch.Tensor,
    cond: torch.Tensor | None,
    t: torch.Tensor,
    noise: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample loss of `model` on clean images `x0` at timesteps `t` with `noise` (conditioned on
    `cond`, the class or the null class), and the network's output (the clean estimate, for previews)."""
    if settings.objective == "denoise":
        pred = model(x0 + settings.noise_sigma * noise)
        return (pred - x0).pow(2).flatten(1).mean(1), pred
    x_t = schedule.q_sample(x0, t, noise)
    if settings.channels_last:
        x_t = x_t.contiguous(memory_format=torch.channels_last)
    pred = model(x_t, t, cond)
    target = schedule.training_target(x0, noise, t, prediction)
    loss = (pred.float() - target).pow(2).flatten(1).mean(1)
    if settings.loss_weighting == "min-snr":
        snr = schedule.snr(t, x0).flatten()
        weight = torch.clamp(snr, max=MIN_SNR_GAMMA) / (snr + 1 if prediction == "v" else snr)
        loss = loss * weight
    return loss, pred
