"""`diffcli denoise`: classical blur vs one-step vs iterative denoising (course Part A.1.3-A.1.5),
and the single-step denoiser's noise-level sweep (course Part B.1)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli import console
from diffcli.cli import common
from diffcli.errors import DiffcliError, UsageError

METHODS = ("blur", "onestep", "iterative")


def denoise(
    image: Annotated[str, typer.Argument(help="Image to denoise: a path, - for stdin, or builtin:NAME.")],
    method: Annotated[str, typer.Option("--method", help="blur (Gaussian, no model), onestep (one noise estimate) or iterative (the reverse loop).")] = "iterative",
    t: Annotated[Optional[int], typer.Option("-t", "--t", help="Timestep the image is (or is noised to). Default: half of T.")] = None,
    noisy: Annotated[bool, typer.Option("--noisy", help="The input is already noisy at -t: do not add noise.")] = False,
    compare: Annotated[bool, typer.Option("--compare", help="Write the course's panel: original | noisy | iterative | one-step | blurred.")] = False,
    kernel: Annotated[int, typer.Option("--kernel", help="Gaussian blur kernel size (odd).")] = 5,
    sigma: Annotated[float, typer.Option("--sigma", help="Gaussian blur sigma, in pixels.")] = 2.0,
    stride: Annotated[Optional[int], typer.Option("--stride", help="Iterative: visit every STRIDE-th timestep (the course's 30 at T=1000). Default: 3% of T.")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Iterative: use this many evenly spread steps instead of --stride.")] = None,
    sampler: Annotated[str, typer.Option("--sampler", help="Iterative: ddpm, ddim, heun or dpm++.")] = "ddpm",
    prompt: Annotated[Optional[str], typer.Option("--class", "--prompt", "-c", help="Condition on this class / prompt (default: unconditional).")] = None,
    guidance: Annotated[Optional[float], typer.Option("--guidance", help="CFG scale (default 1: none).")] = None,
    noise_sigma: Annotated[Optional[list[float]], typer.Option("--noise-sigma", help="Single-step denoiser models: add x + SIGMA*z and denoise; repeat for the course's sweep.")] = None,
    model: common.ModelName = None,
    device: common.Device = "auto",
    out: common.Out = None,
    seed: common.Seed = None,
    quiet: common.Quiet = False,
    json_output: common.Json = False,
) -> None:
    """Denoise a noisy image (or noise a clean one to -t first, then denoise it).

    blur needs no model; onestep and iterative use --model (default: the registry default).
    With --json, prints the MSE and PSNR of each result against the clean original.
    """
    common.start(quiet, json_output)
    if method not in METHODS:
        raise UsageError(f"unknown method {method!r}", f"choose one of {', '.join(METHODS)}")
    if kernel < 1 or kernel % 2 == 0:
        raise UsageError(f"--kernel must be an odd positive number, got {kernel}")
    if sigma <= 0:
        raise UsageError(f"--sigma must be positive, got {sigma}")
    if noisy and t is None:
        raise UsageError("--noisy needs -t: the timestep the input is noisy at")
    needs_model = compare or method != "blur" or noise_sigma is not None
    seed = common.pick_seed(seed)
    if needs_model:
        _denoise_with_model(image, method, t, noisy, compare, kernel, sigma, stride, steps, sampler, prompt, guidance, noise_sigma, model, device, out, seed, json_output)
    else:
        _blur_only(image, t, noisy, kernel, sigma, out, seed, json_output)


def _blur_only(image: str, t: Optional[int], noisy: bool, kernel: int, sigma: float, out: Optional[str], seed: int, json_output: bool) -> None:
    """Blur without torch or a model: the schedule is the default linear one with T = 1000."""
    from diffcli.diffusion.filters import gaussian_blur
    from diffcli.diffusion.schedule import NoiseSchedule, gaussian_noise
    from diffcli.io import images

    schedule = NoiseSchedule("linear", 1000)
    t = schedule.timesteps // 2 if t is None else t
    _check_t(t, schedule.timesteps)
    pixels = images.load_image(image, notify=console.notice)
    _check_blur_fits(kernel, pixels.shape)
    x = pixels * 2 - 1
    x_t = x if noisy else schedule.q_sample(x, t, gaussian_noise(x.shape, seed))
    result = ((gaussian_blur(x_t, kernel, sigma) + 1) / 2).clip(0, 1)
    scores = {} if noisy else {"blur": _scores(result, pixels), "noisy": _scores(((x_t + 1) / 2).clip(0, 1), pixels)}
    _write(result, out, json_output, common.metadata("denoise", method="blur", t=t, seed=seed, kernel=kernel, sigma=sigma), {"method": "blur", "t": t, "seed": seed, "scores": scores})


def _denoise_with_model(image, method, t, noisy, compare, kernel, sigma, stride, steps, sampler, prompt, guidance, noise_sigma, model_name, device, out, seed, json_output) -> None:
    import numpy as np
    import torch

    from diffcli.diffusion.filters import gaussian_blur
    from diffcli.diffusion.schedule import gaussian_noise
    from diffcli.generation import SamplerSettings, generate, guidance_scale, prompt_terms
    from diffcli.io import images
    from diffcli.io.figures import figure
    from diffcli.models.backends import load_model

    try:
        model = load_model(model_name, device=device)
    except DiffcliError as exc:
        if "no models are registered" in exc.message:
            raise DiffcliError(
                f"--method {method}{' --compare' if compare else ''} needs a model and none is registered",
                "train one with `diffcli train`, add one with `diffcli models import`, or use --method blur",
            ) from None
        raise
    pixels = images.load_image(image, channels=model.channels, size=model.size, notify=console.notice)
    x = model.to_model(pixels)[None]

    if not model.is_diffusion:
        _single_step_sweep(model, pixels, x, noise_sigma, seed, out, json_output)
        return
    if noise_sigma is not None:
        raise UsageError(f"--noise-sigma is for single-step denoiser models; {model.name!r} is a diffusion model", "use -t")

    schedule = model.schedule
    t = schedule.timesteps // 2 if t is None else t
    _check_t(t, schedule.timesteps)
    if noisy:
        x_t = x
    else:
        eps = torch.from_numpy(gaussian_noise(pixels.shape, seed))[None].to(model.device)
        x_t = schedule.q_sample(x, t, eps)
    scale = guidance_scale(model, guidance)
    resolved = model.resolve_prompt(prompt) if prompt is not None else None
    if resolved is None and model.cond_type == "class" and not model.config.has_null_class:
        raise UsageError(f"model {model.name!r} has no unconditional mode", f"pass --class (one of {model.describe_labels()})")
    terms = prompt_terms(model, [resolved], scale)

    if stride is None and steps is None:
        stride = max(1, round(0.03 * schedule.timesteps))
    iterative_settings = SamplerSettings(sampler, steps, stride if steps is None else None)
    iterative_settings.validate()
    results: dict[str, np.ndarray] = {}

    def run(settings: SamplerSettings) -> np.ndarray:
        return model.to_pixels(generate(model, terms, [seed], settings, noisy=x_t, start=t))[0]

    if compare or method == "iterative":
        results["iterative"] = run(iterative_settings)
    if compare or method == "onestep":
        results["onestep"] = run(SamplerSettings("ddim", steps=1))
    noisy_pixels = model.to_pixels(x_t)[0]
    if compare or method == "blur":
        _check_blur_fits(kernel, pixels.shape)
        results["blur"] = model.to_pixels(gaussian_blur(x_t, kernel, sigma))[0]

    scores = {} if noisy else {name: _scores(img, pixels) for name, img in {"noisy": noisy_pixels, **results}.items()}
    meta = common.metadata("denoise", method="compare" if compare else method, t=t, seed=seed, model=model.name, guidance=scale, prompt=prompt, stride=iterative_settings.stride, steps=iterative_settings.steps, sampler=sampler)
    if compare:
        labels = ["original", f"noisy t={t}", "iterative", "one-step", f"blur {kernel}/{sigma:g}"]
        tiles = [pixels, noisy_pixels, results["iterative"], results["onestep"], results["blur"]]
        if noisy:
            labels, tiles = labels[1:], tiles[1:]
        result = figure([tiles], col_labels=labels)
    else:
        result = results[method]
    summary = {"method": "compare" if compare else method, "t": t, "seed": seed, "model": model.name, "scores": scores}
    _write(result, out, json_output, meta, summary)


def _single_step_sweep(model, pixels, x, noise_sigma, seed, out, json_output) -> None:
    """Course B.1: x + sigma z at each sigma, through the single-step denoiser; a 2-row figure when
    several sigmas are given."""
    import torch

    from diffcli.diffusion.schedule import gaussian_noise
    from diffcli.io.figures import figure

    sigmas = noise_sigma or [float(model.config.training.get("noise_sigma", 0.5))]
    if any(s < 0 for s in sigmas):
        raise UsageError("--noise-sigma values must be 0 or more")
    z = torch.from_numpy(gaussian_noise(pixels.shape, seed))[None].to(model.device)
    noisy = [x + s * z for s in sigmas]
    clean = [model.denoise_once(n) for n in noisy]
    noisy_px = [model.to_pixels(n)[0] for n in noisy]
    clean_px = [model.to_pixels(c)[0] for c in clean]
    scores = {f"{s:g}": {"noisy": _scores(n, pixels), "denoised": _scores(c, pixels)} for s, n, c in zip(sigmas, noisy_px, clean_px)}
    if len(sigmas) == 1:
        result = clean_px[0]
    else:
        result = figure([noisy_px, clean_px], col_labels=[f"sigma={s:g}" for s in sigmas], row_labels=["noisy", "denoised"])
    meta = common.metadata("denoise", method="onestep", model=model.name, seed=seed, noise_sigma=sigmas)
    _write(result, out, json_output, meta, {"method": "onestep", "model": model.name, "seed": seed, "noise_sigma": sigmas, "scores": scores})


def _check_t(t: int, timesteps: int) -> None:
    if not 0 <= t < timesteps:
        raise UsageError(f"-t {t} is outside [0, {timesteps})", f"timesteps go from 0 to {timesteps - 1}")


def _check_blur_fits(kernel: int, shape: tuple[int, ...]) -> None:
    if kernel // 2 >= min(shape[-2:]):
        raise UsageError(f"--kernel {kernel} is too large for a {shape[-1]}x{shape[-2]} image")


def _scores(result, reference) -> dict[str, float]:
    """MSE and PSNR (dB) of a [0, 1] image against the clean original."""
    import math

    import numpy as np

    mse = float(np.mean((np.asarray(result, dtype=np.float64) - reference) ** 2))
    return {"mse": round(mse, 6), "psnr": round(10 * math.log10(1.0 / mse), 3) if mse > 0 else float("inf")}


def _write(result, out, json_output, meta, summary) -> None:
    from diffcli.io import images

    target = images.resolve_output(out, "denoise.png", json_output, console.notice)
    images.write_png(result, target, meta)
    if not target.is_stdout:
        console.info(f"wrote {target.describe()}")
    if json_output:
        console.emit_json({**summary, "output": target.describe()})
