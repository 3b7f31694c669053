"""Which timesteps a training step draws (`TrainSettings.timestep_sampling`).

- `uniform`: every integer t in [0, T) equally often (DDPM's choice, and the course's).
- `logit-normal`: u = sigmoid(n), n ~ N(0, 1), t = floor(u * T): the middle of the schedule, where the
  image is about half signal and half noise, drawn most often and both ends rarely (the timestep density
  that rectified-flow training found best, Esser et al. 2024, "Scaling Rectified Flow Transformers",
  section 3.1). On the `flow` schedule u is the noise fraction itself; on the cosine schedule u = 0.5 is
  where SNR = 1.

Both draw from the trainer's generator, so a run is reproducible and `--resume` continues exactly.
"""

from __future__ import annotations

import torch

from diffcli.training.recipe import TIMESTEP_SAMPLINGS


def draw_timesteps(kind: str, n: int, timesteps: int, generator: torch.Generator) -> torch.Tensor:
    """n integer timesteps in [0, timesteps) drawn as `kind` says (int64, on the CPU)."""
    if kind == "uniform":
        return torch.randint(0, timesteps, (n,), generator=generator)
    if kind == "logit-normal":
        u = torch.sigmoid(torch.randn(n, generator=generator, dtype=torch.float64))
        return (u * timesteps).long().clamp_(0, timesteps - 1)
    raise ValueError(f"unknown timestep sampling {kind!r}; expected one of {', '.join(TIMESTEP_SAMPLINGS)}")
