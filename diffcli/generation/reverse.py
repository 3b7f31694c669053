"""Turning a command's request into one call of the engine's reverse loop.

Commands (denoise, sample, anagram, hybrid, eval, training previews) describe WHAT to generate: guidance
terms (diffusion/guidance.py), seeds, sampler settings, an optional init image (SDEdit) and mask
(inpainting). `generate` does the rest with `run_reverse`, so there is exactly one path from a request
to pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import torch

from diffcli.diffusion.guidance import ALWAYS, GuidedModel, Term, classifier_free, inpaint_hook, sdedit_start
from diffcli.diffusion.samplers import SAMPLERS, NoiseSource, StepCallback, make_sampler, run_reverse
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.checks import parse_guidance_interval
from diffcli.errors import DiffcliError, UsageError
from diffcli.models.backends.base import LoadedModel, Prompt


@dataclass(frozen=True)
class SamplerSettings:
    """How to walk the reverse process: which sampler, and either `steps` or the course's `stride`.

    guidance_interval: the part (lo, hi) of the reverse process, as fractions of T, where classifier-free
    guidance applies; plainly conditional elsewhere (`resolve_guidance`; None: guided throughout). It
    lives here, beside the steps, because every term builder of a run reads it from the same settings."""

    sampler: str = "ddpm"
    steps: Optional[int] = None
    stride: Optional[int] = None
    eta: float = 0.0
    auto_steps: bool = False  # steps is the model's default for a full run: scale it for a later start
    guidance_interval: Optional[tuple[float, float]] = None

    def validate(self) -> None:
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.sampler!r}", f"choose one of {', '.join(SAMPLERS)}")
        if self.steps is not None and self.steps < 1:
            raise UsageError(f"`steps` must be at least 1, got {self.steps}")
        if self.stride is not None and self.stride < 1:
            raise UsageError(f"`stride` must be at least 1, got {self.stride}")
        if self.steps is not None and self.stride is not None:
            raise UsageError("give `steps` or `stride`, not both")
        if not 0.0 <= self.eta <= 1.0:
            raise UsageError(f"`eta` must be between 0 and 1, got {self.eta}")
        if self.guidance_interval is not None:
            parse_guidance_interval(self.guidance_interval)


def default_settings(model: LoadedModel, sampler: Optional[str], steps: Optional[int], stride: Optional[int] = None, eta: float = 0.0) -> SamplerSettings:
    """Fill unset choices from the model config's `sampling` block (its recommended sampler/steps)."""
    defaults = model.config.sampling or {}
    sampler = sampler or defaults.get("sampler", "ddpm")
    auto = steps is None and stride is None
    if auto:
        steps = defaults.get("steps") if sampler == defaults.get("sampler", sampler) else None
        stride = defaults.get("stride") if steps is None else None  # e.g. DeepFloyd IF: the course's 30
    settings = SamplerSettings(sampler, steps, stride, eta, auto_steps=auto and steps is not None)
    settings.validate()
    return settings


def plan_timesteps(schedule: NoiseSchedule, settings: SamplerSettings, start: Optional[int] = None) -> list[int]:
    """The decreasing timesteps to visit, from `start` (default T-1)."""
    top = schedule.timesteps - 1 if start is None else start
    if not 0 <= top < schedule.timesteps:
        raise UsageError(f"start timestep {top} is outside [0, {schedule.timesteps})")
    if settings.stride is not None:
        if start is None:  # from pure noise: the stride's grid, T-1 rounded down (the course's 990, 960, ..., 0)
            top -= top % settings.stride
        return schedule.stride_timesteps(settings.stride, top)
    steps = settings.steps if settings.steps is not None else top + 1
    if settings.auto_steps and start is not None:  # the same step density over the shorter range
        steps = max(1, math.ceil(steps * (top + 1) / schedule.timesteps))
    if steps > top + 1:
        where = f"the {schedule.timesteps} timesteps of this model" if start is None else f"the {top + 1} timesteps from t={top}"
        raise UsageError(f"`steps` {steps} is more than {where}", f"use {top + 1} steps or fewer")
    return schedule.strided_timesteps(steps, top)


def guidance_scale(model: LoadedModel, guidance: Optional[float]) -> float:
    """The CFG scale to use: the user's, else the model's default; an error when the model cannot guide."""
    if guidance is None:
        return float((model.config.sampling or {}).get("guidance", 1.0)) if model.supports_guidance else 1.0
    if guidance < 0:
        raise UsageError(f"`guidance` must be 0 or more, got {guidance}")
    if guidance != 1.0 and not model.supports_guidance:
        raise UsageError(
            f"`guidance` needs a model trained with a null class, and {model.name!r} was not",
            "train with `p_uncond` 0.1 (the default for class models), or leave `guidance` out",
        )
    return guidance


def resolve_guidance(model: LoadedModel, guidance: Optional[float], interval: Any = None) -> tuple[float, Optional[tuple[float, float]]]:
    """(CFG scale, guidance interval) for a run: the user's, else the model's.

    The model's recorded interval (config `sampling.guidance_interval`) belongs to its recorded scale,
    so it applies only when the scale is the model's too: a scale the user gives guides throughout
    unless an interval is given with it."""
    scale = guidance_scale(model, guidance)
    chosen = parse_guidance_interval(interval)
    if chosen is not None and not model.supports_guidance:
        raise UsageError(
            f"`guidance_interval` limits classifier-free guidance, and {model.name!r} cannot guide (no null class)",
            "leave `guidance_interval` out",
        )
    if chosen is None and guidance is None and model.supports_guidance:
        chosen = parse_guidance_interval((model.config.sampling or {}).get("guidance_interval"))
    if chosen == (0.0, 1.0) or scale == 1.0:
        chosen = None  # guidance throughout, or none to limit
    return scale, chosen


def guidance_report(scale: float, interval: Optional[tuple[float, float]]) -> dict[str, Any]:
    """The guidance of a run as reports, --json and PNG metadata record it (the interval as a list, or None)."""
    return {"guidance": scale, "guidance_interval": list(interval) if interval is not None else None}


def interval_timesteps(model: LoadedModel, interval: Optional[tuple[float, float]]) -> Optional[tuple[int, int]]:
    """A guidance interval's timesteps [first, stop) for this model's schedule (None: throughout)."""
    if interval is None:
        return None
    T = model.schedule.timesteps
    return round(interval[0] * T), (ALWAYS if interval[1] >= 1.0 else round(interval[1] * T))


def prompt_terms(model: LoadedModel, prompts: Sequence[Optional[Prompt]], scale: float, interval: Optional[tuple[float, float]] = None) -> list[Term]:
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
    init: Optional[torch.Tensor] = None,
    start: Optional[int] = None,
    mask: Optional[torch.Tensor] = None,
    callback: Optional[StepCallback] = None,
    noise: Optional[NoiseSource] = None,
    noisy: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """Sample one image per seed; returns [len(seeds), C, H, W] in the model's value range.

    init (+ start): SDEdit, the clean init noised to `start` (default T-1), then denoised.
    mask (1 = generate): inpainting of init. noisy + start: continue from an image already at `start`
    (`denoise --method iterative`). With none of these, sampling starts from pure noise at T-1.
    """
    if not model.is_diffusion:
        raise DiffcliError(f"model {model.name!r} is a single-step denoiser; it cannot sample", "denoise with it instead (the one-step method)")
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


def chain_callbacks(*callbacks: Optional[Callable[..., Any]]) -> Optional[StepCallback]:
    """One callback that calls each given one (None entries are skipped)."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None

    def call(i: int, t: int, x_t: torch.Tensor, x0: torch.Tensor) -> None:
        for c in active:
            c(i, t, x_t, x0)

    return call
