"""Illusions: the settings `anagram` and `hybrid` use when the request leaves them out, the guidance
terms both build, and how their images read (shared by the commands, the Python API, `--best-of` and
`eval --task anagram|hybrid`, so an evaluation measures exactly what the commands make and keep).

Defaults depend on the kind of model. For the small class models they are what docs/illusions.md
measured to work best; for text-to-image models (DeepFloyd IF) they follow the visual-anagrams
reference. Each request builder returns guidance terms for `generation.reverse.generate` (and, with the
low-pass scaled to 256 px, for stage II of DeepFloyd IF). Guidance compares conditions by value, so
the null condition both prompts' CFG terms use is evaluated once per step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from diffcli import checks
from diffcli.diffusion import filters
from diffcli.diffusion.guidance import Term, anagram_terms, hybrid_terms
from diffcli.diffusion.views import View, get_view
from diffcli.errors import UsageError
from diffcli.generation.requests import (  # noqa: F401 (the illusion defaults, re-exported)
    CLASS_ANAGRAM,
    CLASS_HYBRID,
    REFERENCE_STAGE_TWO_STEPS,
    TEXT_ANAGRAM,
    TEXT_HYBRID,
    IllusionDefaults,
    Sampling,
)
from diffcli.generation.settings import SamplerSettings, interval_timesteps, resolve_sampling
from diffcli.models.backends.base import LoadedModel, Prompt


def defaults(model: LoadedModel, kind: str) -> IllusionDefaults:
    """The illusion defaults (`kind` anagram or hybrid) for this model."""
    if kind not in ("anagram", "hybrid"):
        raise ValueError(f"unknown illusion {kind!r}")
    text = model.cond_type == "text"
    chosen = (TEXT_ANAGRAM if text else CLASS_ANAGRAM) if kind == "anagram" else (TEXT_HYBRID if text else CLASS_HYBRID)
    if model.config.distillation:  # a student: its own few steps (its guidance is built in)
        return replace(chosen, steps=int(model.config.sampling.get("steps") or chosen.steps))
    return replace(chosen, steps=min(chosen.steps, model.schedule.timesteps))


def fill_sampling(model: LoadedModel, sampling: Sampling, kind: str) -> Sampling:
    """`sampling` with what it leaves out taken from the illusion defaults:
    the sampler, its steps (unless a stride or another sampler is asked for: then the model's rule
    applies, as for `sample`) and the guidance scale (models that can guide)."""
    d = defaults(model, kind)
    sampler = sampling.sampler or d.sampler
    steps = sampling.steps
    if steps is None and sampling.stride is None and sampler == d.sampler:
        steps = d.steps
    guidance = sampling.guidance
    if guidance is None and model.supports_guidance:
        guidance = d.guidance
    return replace(sampling, sampler=sampler, steps=steps, guidance=guidance)


def illusion_sampling(model: LoadedModel, sampling: Sampling, kind: str) -> SamplerSettings:
    """An illusion's settings: the request's choices, else the illusion defaults of the model, else the
    model's own."""
    checks.STEPS.optional(sampling.steps)
    return resolve_sampling(model, fill_sampling(model, sampling, kind))


def anagram_weight(model: LoadedModel, weight: float | None) -> float:
    """An anagram's weight of its first prompt: the given one (checked), else the illusion default."""
    return defaults(model, "anagram").weight if weight is None else checks.WEIGHT(weight)


def pick_view(name: str, model: LoadedModel) -> View:
    """An anagram view by name that fits the model's images."""
    try:
        view = get_view(name)
        view.check_fits(model.size, model.size)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return view


def _default_filter(model: LoadedModel) -> tuple[int, float]:
    """The illusion default's low-pass (kernel, sigma) at the model's image size."""
    d = defaults(model, "hybrid")
    size = model.size
    sigma = d.sigma * size / d.sigma_size
    if d.kernel is not None:
        kernel = int(round(d.kernel * size / d.sigma_size))
    else:
        kernel = 2 * math.ceil(3 * sigma) + 1
    kernel += kernel % 2 == 0
    return max(3, min(kernel, 2 * size - 1)), sigma  # reflect padding: the half-kernel stays inside


def hybrid_filter(model: LoadedModel, kernel: int | None = None, sigma: float | None = None) -> tuple[int, float]:
    """The hybrid low-pass (kernel, sigma): the given ones (checked), else the model's illusion default
    (scaled with the image size); a sigma given alone gets the odd kernel covering 3 sigma each side."""
    default_kernel, default_sigma = _default_filter(model)
    sigma = default_sigma if sigma is None else checks.SIGMA(sigma)
    if kernel is None:
        kernel = default_kernel if sigma == default_sigma else min(2 * math.ceil(3 * sigma) + 1, 2 * model.size - 1)
    else:
        kernel = checks.odd_kernel("kernel", kernel)
    if kernel // 2 >= model.size:
        raise UsageError(
            f"`kernel` {kernel} is larger than the model's {model.size}x{model.size} images",
            f"use an odd size below {2 * model.size - 1}",
        )
    return kernel, sigma


def hybrid_bands(model: LoadedModel, far_first: float | None, near_last: float | None) -> tuple[float, float]:
    """A hybrid's (far_first, near_last): the given ones (checked), else the model's illusion defaults."""
    d = defaults(model, "hybrid")
    far_first = d.far_first if far_first is None else checks.number("far_first", far_first, low=0.0, high=1.0)
    near_last = d.near_last if near_last is None else checks.number("near_last", near_last, low=0.0, high=1.0)
    if far_first + near_last > 1.0:
        raise UsageError(
            f"`far_first` {far_first:g} and `near_last` {near_last:g} add up to more than the whole reverse process",
            "keep their sum at most 1",
        )
    return far_first, near_last


def band_switches(model: LoadedModel, far_first: float, near_last: float) -> tuple[int, int | None]:
    """`hybrid_terms`' (low_switch, high_switch) timesteps for shares of the reverse process: FAR alone
    at t >= (1 - far_first) T, NEAR alone at t < near_last T."""
    T = model.schedule.timesteps
    return int(round(near_last * T)), (None if far_first <= 0.0 else int(round((1.0 - far_first) * T)))


def anagram_request(
    model: LoadedModel,
    first: Sequence[Prompt],
    second: Sequence[Prompt],
    scale: float,
    view: View,
    weight: float = 0.5,
    interval: tuple[float, float] | None = None,
) -> list[Term]:
    """Terms for a batch of anagrams: row i reads as first[i], and as second[i] after `view`.
    interval: where the guidance applies (fractions of T; None: throughout)."""
    null = model.null_condition(len(first)) if scale != 1.0 else None
    return anagram_terms(
        model.condition(first), model.condition(second), null, scale, view, weight, interval_timesteps(model, interval)
    )


def hybrid_request(
    model: LoadedModel,
    far: Sequence[Prompt],
    near: Sequence[Prompt],
    scale: float,
    kernel: int,
    sigma: float,
    far_first: float = 0.0,
    near_last: float = 0.0,
    interval: tuple[float, float] | None = None,
) -> list[Term]:
    """Terms for a batch of hybrids: row i is far[i] in its low frequencies and near[i] in its high.
    far_first / near_last: the shares of the reverse process that follow FAR alone at its start and
    NEAR alone at its end (`IllusionDefaults`). interval: where the guidance applies (fractions of T)."""
    null = model.null_condition(len(far)) if scale != 1.0 else None
    low_switch, high_switch = band_switches(model, far_first, near_last)
    return hybrid_terms(
        model.condition(far),
        model.condition(near),
        null,
        scale,
        kernel,
        sigma,
        low_switch,
        high_switch,
        interval_timesteps(model, interval),
    )


def anagram_readings(
    reader: Any, model: LoadedModel, x: Any, first: Sequence[Prompt], second: Sequence[Prompt], view: View
) -> list:
    """How a batch of anagrams reads (`--best-of` and `eval` alike): the image as first[i] and its view
    as second[i], each against the other prompt (scoring/readings.py's readers)."""
    return [
        reader.read(model.to_pixels(x), first, [[b] for b in second]),
        reader.read(model.to_pixels(view.apply(x)), second, [[a] for a in first]),
    ]


def hybrid_readings(
    reader: Any, model: LoadedModel, x: Any, far: Sequence[Prompt], near: Sequence[Prompt], kernel: int, sigma: float
) -> list:
    """How a batch of hybrids reads (`--best-of` and `eval` alike): its low-pass as far[i] and the whole
    image as near[i], each against the other prompt."""
    return [
        reader.read(model.to_pixels(filters.lowpass(x, kernel, sigma)), far, [[b] for b in near]),
        reader.read(model.to_pixels(x), near, [[a] for a in far]),
    ]
