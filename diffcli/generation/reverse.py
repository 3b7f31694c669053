"""One call of the engine's reverse loop for a batch of images.

Commands (denoise, sample, anagram, hybrid, eval, training previews) describe WHAT to generate: guidance
terms (diffusion/guidance.py), seeds, sampler settings, an optional init image (SDEdit) and mask
(inpainting). `generate` does the rest with `run_reverse`, so there is exactly one path from a request
to pixels; generation/batches.py calls it batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from diffcli.diffusion.guidance import GuidedModel, Term, classifier_free, inpaint_hook, sdedit_start
from diffcli.diffusion.samplers import NoiseSource, StepCallback, make_sampler, run_reverse
from diffcli.errors import DiffcliError, UsageError
from diffcli.generation.settings import SamplerSettings, interval_timesteps, plan_timesteps
from diffcli.models.backends.base import LoadedModel, Prompt


def prompt_terms(
    model: LoadedModel, prompts: Sequence[Prompt | None], scale: float, interval: tuple[float, float] | None = None
) -> list[Term]:
    """CFG terms for one prompt per sample (plain conditional when scale is 1); guided only inside
    `interval` (fractions of T, `SamplerSettings.guidance_interval`) when one is given."""
    cond = model.condition(prompts)
    null = model.null_condition(len(prompts)) if scale != 1.0 else None
    return classifier_free(cond, null, scale, interval=interval_timesteps(model, interval))


def generate(
    model: LoadedModel,
    terms: Sequence[Term],
    seeds: Sequence[int],
    settings: SamplerSettings,
    init: torch.Tensor | None = None,
    start: int | None = None,
    mask: torch.Tensor | None = None,
    callback: StepCallback | None = None,
    noise: NoiseSource | None = None,
    noisy: torch.Tensor | None = None,
) -> torch.Tensor:
    """Sample one image per seed; returns [len(seeds), C, H, W] in the model's value range.

    init (+ start): SDEdit, the clean init noised to `start` (default T-1), then denoised.
    mask (1 = generate): inpainting of init. noisy + start: continue from an image already at `start`
    (`denoise --method iterative`). With none of these, sampling starts from pure noise at T-1.
    """
    if not model.is_diffusion:
        raise DiffcliError(
            f"model {model.name!r} is a single-step denoiser; it cannot sample",
            "denoise with it instead (the one-step method)",
        )
    if mask is not None and init is None:
        raise UsageError("`mask` needs `init` (the image to inpaint)")
    noise = noise or NoiseSource(seeds, model.device)
    schedule = model.schedule
    if noisy is not None:  # already at `start`: continue the reverse process from it
        if start is None:
            raise ValueError("a noisy start image needs its timestep")
        timesteps = plan_timesteps(schedule, settings, start)
        x = noisy.to(model.device)
    elif init is not None:  # SDEdit / inpainting: noise the clean image to the first timestep
        timesteps = plan_timesteps(schedule, settings, start)
        init = init.to(model.device)
        x = sdedit_start(schedule, init, timesteps[0], noise)
    else:
        if start is not None:
            raise UsageError("`start` needs `init` (the image to start from)")
        timesteps = plan_timesteps(schedule, settings)
        x = noise.randn((model.channels, model.size, model.size)).to(model.device)
    after = inpaint_hook(schedule, init, mask.to(model.device), noise) if mask is not None else None
    guided = GuidedModel(model.net, terms, learned_variance=model.learned_variance)
    sampler = make_sampler(settings.sampler, settings.eta)
    return run_reverse(guided, x, timesteps, schedule, model.spec, sampler, noise, callback, after)


class ChainRecorder:
    """Keeps `frames` evenly spaced (x_t, predicted x0) pairs of a run, on the CPU, for chain strips."""

    def __init__(self, total_steps: int, frames: int = 10) -> None:
        frames = max(1, min(frames, total_steps))
        self.keep = {round(i * (total_steps - 1) / max(frames - 1, 1)) for i in range(frames)}
        self.steps: list[int] = []
        self.x_t: list[torch.Tensor] = []
        self.x0: list[torch.Tensor] = []

    def __call__(self, i: int, t: int, x_t: torch.Tensor, x0: torch.Tensor) -> None:
        if i in self.keep:
            self.steps.append(t)
            self.x_t.append(x_t.detach().float().cpu())
            self.x0.append(x0.detach().float().cpu())


def chain_callbacks(*callbacks: Callable[..., Any] | None) -> StepCallback | None:
    """One callback that calls each given one (None entries are skipped)."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None

    def call(i: int, t: int, x_t: torch.Tensor, x0: torch.Tensor) -> None:
        for c in active:
            c(i, t, x_t, x0)

    return call
