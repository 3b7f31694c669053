"""How a run walks the reverse process: the choices a request makes (`Sampling`) and the one settings
type they resolve to against a model (`SamplerSettings`), with the checks every command shares.

The CLI's sampling options, the Python API's keywords and every request carry a `Sampling`; jobs,
evaluations and training previews resolve it with `resolve_sampling` (illusions first fill it with their
own defaults, generation/illusions.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from diffcli import checks
from diffcli.checks import parse_guidance_interval
from diffcli.diffusion.guidance import ALWAYS
from diffcli.diffusion.names import SAMPLERS
from diffcli.diffusion.schedule import NoiseSchedule
from diffcli.errors import UsageError
from diffcli.generation.requests import Sampling
from diffcli.models.backends.base import LoadedModel


@dataclass(frozen=True)
class SamplerSettings:
    """A run's resolved settings: which sampler, either `steps` or the course's `stride`, DDIM's eta,
    and the classifier-free guidance (its scale and where it applies).

    guidance_interval: the part (lo, hi) of the reverse process, as fractions of T, where classifier-free
    guidance applies; plainly conditional elsewhere (`resolve_guidance`; None: guided throughout).
    guidance: the CFG scale the term builders of the run use (1: off)."""

    sampler: str = "ddpm"
    steps: int | None = None
    stride: int | None = None
    eta: float = 0.0
    auto_steps: bool = False  # steps is the model's default for a full run: scale it for a later start
    guidance_interval: tuple[float, float] | None = None
    guidance: float = 1.0

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

    def report(self) -> dict[str, Any]:
        """The guidance as reports, --json and PNG metadata record it."""
        return guidance_report(self.guidance, self.guidance_interval)

    def describe(self, model: LoadedModel, seed: int) -> dict[str, Any]:
        """What an evaluation records of how its images were made."""
        steps = len(plan_timesteps(model.schedule, self))
        eta = self.eta if self.sampler == "ddim" else None
        return {"sampler": self.sampler, "steps": steps, **self.report(), "seed": seed, "eta": eta}


def default_settings(
    model: LoadedModel, sampler: str | None, steps: int | None, stride: int | None = None, eta: float = 0.0
) -> SamplerSettings:
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


def resolve_sampling(model: LoadedModel, sampling: Sampling) -> SamplerSettings:
    """A request's sampling resolved for this model: its choices (checked), else the model's."""
    steps = checks.STEPS.optional(sampling.steps)
    checks.STRIDE.optional(sampling.stride)
    checks.ETA(sampling.eta)
    checks.GUIDANCE.optional(sampling.guidance)
    T = model.schedule.timesteps
    if steps is not None and steps > T:
        raise UsageError(f"`steps` {steps} is larger than the model's T = {T}", f"use at most {T}")
    settings = default_settings(model, sampling.sampler, steps, sampling.stride, sampling.eta)
    scale, interval = resolve_guidance(model, sampling.guidance, sampling.guidance_interval)
    return replace(settings, guidance_interval=interval, guidance=scale)


def plan_timesteps(schedule: NoiseSchedule, settings: SamplerSettings, start: int | None = None) -> list[int]:
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
        where = (
            f"the {schedule.timesteps} timesteps of this model"
            if start is None
            else f"the {top + 1} timesteps from t={top}"
        )
        raise UsageError(f"`steps` {steps} is more than {where}", f"use {top + 1} steps or fewer")
    return schedule.strided_timesteps(steps, top)


def guidance_scale(model: LoadedModel, guidance: float | None) -> float:
    """The CFG scale to use: the user's, else the model's default; an error when the model cannot guide."""
    if guidance is None:
        return float((model.config.sampling or {}).get("guidance", 1.0)) if model.supports_guidance else 1.0
    if guidance < 0:
        raise UsageError(f"`guidance` must be 0 or more, got {guidance}")
    learnt = model.config.distillation
    if guidance != 1.0 and learnt:
        raise UsageError(
            f"{model.name!r} was distilled with the guidance of {learnt.get('teacher')!r} built in "
            f"(scale {learnt.get('guidance', 1.0):g}); it samples without `guidance`",
            "leave `guidance` out, or distil again with the `guidance` you want",
        )
    if guidance != 1.0 and not model.supports_guidance:
        raise UsageError(
            f"`guidance` needs a model trained with a null class, and {model.name!r} was not",
            "train with `p_uncond` 0.1 (the default for class models), or leave `guidance` out",
        )
    return guidance


def resolve_guidance(
    model: LoadedModel, guidance: float | None, interval: Any = None
) -> tuple[float, tuple[float, float] | None]:
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


def guidance_report(scale: float, interval: tuple[float, float] | None) -> dict[str, Any]:
    """The guidance of a run as reports, --json and PNG metadata record it (the interval as a list, or None)."""
    return {"guidance": scale, "guidance_interval": list(interval) if interval is not None else None}


def interval_timesteps(model: LoadedModel, interval: tuple[float, float] | None) -> tuple[int, int] | None:
    """A guidance interval's timesteps [first, stop) for this model's schedule (None: throughout)."""
    if interval is None:
        return None
    T = model.schedule.timesteps
    return round(interval[0] * T), (ALWAYS if interval[1] >= 1.0 else round(interval[1] * T))


MAX_PER_PROMPT = checks.COUNT.high  # images per class / prompt in one run: far past any figure or evaluation, and
# a typo like -n 100000000 is refused at once instead of building lists of its seeds for minutes
MAX_BEST_OF = checks.BEST_OF.high


def count(name: str, value: Any) -> int:
    """A number of images per class / prompt: 1 to MAX_PER_PROMPT."""
    return checks.COUNT(value, name)


def best_of_count(value: Any) -> int:
    """Candidates per image for `best_of`: 1 (off) to MAX_BEST_OF."""
    return checks.BEST_OF(value)
