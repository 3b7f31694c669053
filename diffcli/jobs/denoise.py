"""The `denoise` job: classical blur vs one-step vs iterative denoising (course Part A.1.3-A.1.5), and the
single-step denoiser's noise-level sweep (course Part B.1), each scored against the clean original."""

from __future__ import annotations

from typing import Any

import numpy as np

from diffcli import checks, console, params
from diffcli.errors import DiffcliError, UsageError
from diffcli.jobs.requests import DenoiseRequest
from diffcli.jobs.results import ImageSet, metadata

METHODS = ("blur", "onestep", "iterative")
DEFAULT_SAMPLER = "ddpm"  # the course's iterative denoising
BLUR_SCHEDULE = ("linear", 1000)  # blur needs no model: noise with the course's schedule


def denoise(request: DenoiseRequest, model: Any = None, device: str = "auto") -> ImageSet:
    """Run the request; `model` is a LoadedModel, a registry name or None (the default model), and is
    only loaded when the method needs one. The summary carries MSE / PSNR against the clean original."""
    params.check(request)
    if request.noisy and request.t is None:
        raise UsageError("`noisy` needs `t`: the timestep the input is noisy at")
    seed, _ = checks.seed(request.seed)
    if not request.needs_model:
        return _blur_only(request, seed)
    return _with_model(request, _load(model, device, request), seed)


def _load(model: Any, device: str, request: DenoiseRequest):
    if model is not None and not isinstance(model, str):
        return model
    from diffcli.models.backends import load_model

    try:
        return load_model(model, device=device)
    except DiffcliError as exc:
        if "no models are registered" in exc.message:
            raise DiffcliError(
                (
                    f"the {request.method} method{' and the comparison' if request.compare else ''} "
                    "need a model and none is registered"
                ),
                "train one with `diffcli train`, add one with `diffcli models import`, or use the blur method",
            ) from None
        raise


def _check_t(t: int, timesteps: int) -> None:
    checks.integer("t", t)
    if not 0 <= t < timesteps:
        raise UsageError(f"`t` {t} is outside [0, {timesteps})", f"timesteps go from 0 to {timesteps - 1}")


def _check_blur_fits(kernel: int, shape: tuple[int, ...]) -> None:
    if kernel // 2 >= min(shape[-2:]):
        raise UsageError(f"`kernel` {kernel} is too large for a {shape[-1]}x{shape[-2]} image")


def _blur_only(request: DenoiseRequest, seed: int) -> ImageSet:
    """Blur without torch or a model."""
    from diffcli.diffusion.filters import gaussian_blur
    from diffcli.diffusion.schedule import NoiseSchedule, gaussian_noise
    from diffcli.io import images
    from diffcli.scoring.fidelity import mse_psnr

    schedule = NoiseSchedule(*BLUR_SCHEDULE)
    t = schedule.timesteps // 2 if request.t is None else request.t
    _check_t(t, schedule.timesteps)
    pixels = images.load_input(request.image, notify=console.notice)
    _check_blur_fits(request.kernel, pixels.shape)
    x = pixels * 2 - 1
    x_t = x if request.noisy else schedule.q_sample(x, t, gaussian_noise(x.shape, seed))
    result = ((gaussian_blur(x_t, request.kernel, request.sigma) + 1) / 2).clip(0, 1)
    scores = (
        {}
        if request.noisy
        else {"blur": mse_psnr(result, pixels), "noisy": mse_psnr(((x_t + 1) / 2).clip(0, 1), pixels)}
    )
    meta = metadata("denoise", method="blur", t=t, seed=seed, kernel=request.kernel, sigma=request.sigma)
    return ImageSet([result], ["denoise"], [{}], meta, {"method": "blur", "t": t, "seed": seed, "scores": scores})


def _with_model(request: DenoiseRequest, model, seed: int) -> ImageSet:
    import torch

    from diffcli.diffusion.filters import gaussian_blur
    from diffcli.diffusion.schedule import course_stride, gaussian_noise
    from diffcli.generation import SamplerSettings, generate, guidance_report, prompt_terms, resolve_guidance
    from diffcli.io import images
    from diffcli.io.figures import figure
    from diffcli.scoring.fidelity import mse_psnr

    pixels = images.load_input(request.image, channels=model.channels, size=model.size, notify=console.notice)
    x = model.to_model(pixels)[None]
    if not model.is_diffusion:
        return _single_step_sweep(request, model, pixels, x, seed)
    if request.noise_sigma is not None:
        raise UsageError(
            f"`noise_sigma` is for single-step denoiser models; {model.name!r} is a diffusion model",
            "give a timestep `t` instead",
        )

    schedule = model.schedule
    t = schedule.timesteps // 2 if request.t is None else request.t
    _check_t(t, schedule.timesteps)
    if request.noisy:
        x_t = x
    else:
        eps = torch.from_numpy(gaussian_noise(pixels.shape, seed))[None].to(model.device)
        x_t = schedule.q_sample(x, t, eps)
    sampling = request.sampling
    scale, interval = resolve_guidance(model, sampling.guidance, sampling.guidance_interval)
    resolved = model.resolve_prompt(str(request.prompt)) if request.prompt is not None else None
    if resolved is None and model.cond_type == "class" and not model.config.has_null_class:
        raise UsageError(
            f"model {model.name!r} has no unconditional mode", f"give a class (one of {model.describe_labels()})"
        )
    terms = prompt_terms(model, [resolved], scale, interval)

    default = sampling.stride is None and sampling.steps is None
    stride = course_stride(schedule.timesteps) if default else sampling.stride
    sampler = sampling.sampler or DEFAULT_SAMPLER
    iterative = SamplerSettings(sampler, sampling.steps, stride if sampling.steps is None else None, sampling.eta)
    iterative.validate()
    results: dict[str, np.ndarray] = {}

    def run(settings: SamplerSettings) -> np.ndarray:
        return model.to_pixels(generate(model, terms, [seed], settings, noisy=x_t, start=t))[0]

    if request.compare or request.method == "iterative":
        results["iterative"] = run(iterative)
    if request.compare or request.method == "onestep":
        results["onestep"] = run(SamplerSettings("ddim", steps=1))
    noisy_pixels = model.to_pixels(x_t)[0]
    if request.compare or request.method == "blur":
        _check_blur_fits(request.kernel, pixels.shape)
        results["blur"] = model.to_pixels(gaussian_blur(x_t, request.kernel, request.sigma))[0]

    scores = (
        {}
        if request.noisy
        else {name: mse_psnr(img, pixels) for name, img in {"noisy": noisy_pixels, **results}.items()}
    )
    method = "compare" if request.compare else request.method
    meta = metadata(
        "denoise",
        method=method,
        t=t,
        seed=seed,
        model=model.name,
        **guidance_report(scale, interval),
        prompt=request.prompt,
        stride=iterative.stride,
        steps=iterative.steps,
        sampler=sampler,
    )
    if request.compare:
        labels = ["original", f"noisy t={t}", "iterative", "one-step", f"blur {request.kernel}/{request.sigma:g}"]
        tiles = [pixels, noisy_pixels, results["iterative"], results["onestep"], results["blur"]]
        if request.noisy:
            labels, tiles = labels[1:], tiles[1:]
        result = figure([tiles], col_labels=labels)
    else:
        result = results[request.method]
    summary = {"method": method, "t": t, "seed": seed, "model": model.name, "scores": scores}
    return ImageSet([result], ["denoise"], [{}], meta, summary)


def _single_step_sweep(request: DenoiseRequest, model, pixels: np.ndarray, x, seed: int) -> ImageSet:
    """Course B.1: x + sigma z at each sigma, through the single-step denoiser; a 2-row figure when
    several sigmas are given."""
    import torch

    from diffcli.diffusion.schedule import gaussian_noise
    from diffcli.io.figures import figure
    from diffcli.scoring.fidelity import mse_psnr

    sigmas = [
        checks.NOISE_SIGMA(s)
        for s in (checks.as_list(request.noise_sigma) or [model.config.training.get("noise_sigma", 0.5)])
    ]
    z = torch.from_numpy(gaussian_noise(pixels.shape, seed))[None].to(model.device)
    noisy = [x + s * z for s in sigmas]
    clean = [model.denoise_once(n) for n in noisy]
    noisy_px = [model.to_pixels(n)[0] for n in noisy]
    clean_px = [model.to_pixels(c)[0] for c in clean]
    scores = {
        f"{s:g}": {"noisy": mse_psnr(n, pixels), "denoised": mse_psnr(c, pixels)}
        for s, n, c in zip(sigmas, noisy_px, clean_px)
    }
    if len(sigmas) == 1:
        result = clean_px[0]
    else:
        result = figure(
            [noisy_px, clean_px], col_labels=[f"sigma={s:g}" for s in sigmas], row_labels=["noisy", "denoised"]
        )
    meta = metadata("denoise", method="onestep", model=model.name, seed=seed, noise_sigma=sigmas)
    summary = {"method": "onestep", "model": model.name, "seed": seed, "noise_sigma": sigmas, "scores": scores}
    return ImageSet([result], ["denoise"], [{}], meta, summary)
