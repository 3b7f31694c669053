"""The `noise` job: the forward process x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps at one or more t.

Runs on numpy alone (no torch, no model), so it is fast in pipelines.
"""

from __future__ import annotations

import math

from diffcli import checks, console, params
from diffcli.errors import UsageError
from diffcli.jobs.requests import NoiseRequest
from diffcli.jobs.results import ImageSet, metadata

SCHEDULES = ("linear", "cosine")
DEFAULT_TIMESTEPS = 1000  # the course's T for its pixel-space model


def max_side() -> int:
    """The largest square side an image may have (the input pixel limit)."""
    from diffcli.io.images import MAX_PIXELS

    return math.isqrt(MAX_PIXELS)


def noise(request: NoiseRequest) -> ImageSet:
    """One noisy image per timestep; laid out as a labelled strip (original, then each t) when several."""
    from diffcli.diffusion.schedule import NoiseSchedule, gaussian_noise
    from diffcli.io import images
    from diffcli.io.figures import figure

    params.check(request)
    timesteps = checks.TIMESTEPS(DEFAULT_TIMESTEPS if request.timesteps is None else request.timesteps)
    checks.choice("schedule", request.schedule, SCHEDULES, what="schedule")
    ts = checks.as_list(request.t) or []
    if not ts:
        raise UsageError("`t` needs at least one timestep")
    for value in ts:
        checks.integer("t", value)
        if not 0 <= value < timesteps:
            raise UsageError(f"`t` {value} is outside [0, {timesteps})", f"timesteps go from 0 to {timesteps - 1}")
    size = checks.optional_integer("size", request.size, low=1, high=max_side())

    schedule = NoiseSchedule(request.schedule, timesteps)
    pixels = images.load_input(request.image, size=size, notify=console.notice)
    seed, _ = checks.seed(request.seed)
    # x0, eps and each noisy image, then the strip that lays them out again (float64 while noising)
    needed = pixels.size * 8 * (3 + 2 * len(ts))
    what = f"noising a {pixels.shape[2]}x{pixels.shape[1]} image to {len(ts)} timesteps"
    checks.check_memory(needed, what, "ask for fewer timesteps or a smaller `size`")
    eps = gaussian_noise(pixels.shape, seed)
    x0 = pixels * 2.0 - 1.0  # the [-1, 1] range diffusion models work in
    noisy = [((schedule.q_sample(x0, value, eps) + 1.0) / 2.0).clip(0.0, 1.0) for value in ts]
    meta = metadata("noise", seed=seed, schedule=request.schedule, steps=timesteps, t=list(ts))

    def layout():
        if len(ts) == 1:
            return noisy[0]
        return figure([[pixels, *noisy]], col_labels=["original", *[f"t={v}" for v in ts]])

    summary = {"seed": seed, "timesteps": list(ts), "schedule": request.schedule, "steps": timesteps}
    return ImageSet(noisy, [f"noise-t{v:04d}" for v in ts], [{"t": v} for v in ts], meta, summary, layout)
