"""`diffcli hybrid FAR NEAR`: one image that reads as FAR from afar (low frequencies) and NEAR up close."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli import console
from diffcli.cli import common, generating
from diffcli.errors import UsageError


def hybrid(
    far: Annotated[str, typer.Argument(help="What the low frequencies show (seen from afar).")],
    near: Annotated[str, typer.Argument(help="What the high frequencies show (seen up close).")],
    kernel: Annotated[Optional[int], typer.Option("--kernel", help="Gaussian low-pass kernel size, odd (default: 33 at 64 px, scaled to the model).")] = None,
    sigma: Annotated[Optional[float], typer.Option("--sigma", help="Gaussian low-pass sigma in pixels (default: 2 at 64 px, scaled).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Write a panel: hybrid | its low-pass | its high-pass.")] = False,
    n: common.Count = 1,
    sampler: common.SamplerName = None,
    steps: common.Steps = None,
    stride: common.Stride = None,
    guidance: common.Guidance = None,
    eta: common.Eta = 0.0,
    model: common.ModelName = None,
    device: common.Device = "auto",
    offload: common.Offload = "auto",
    upscale: common.Upscale = False,
    out: common.Out = None,
    out_dir: common.OutDir = None,
    seed: common.Seed = None,
    quiet: common.Quiet = False,
    json_output: common.Json = False,
) -> None:
    """Generate hybrid images (factorized diffusion): eps = lowpass(eps(x_t, FAR)) + highpass(eps(x_t, NEAR)),
    each estimate CFG-guided."""
    common.start(quiet, json_output)
    generating.check_out_options(out, out_dir)
    generating.positive_count(n)
    from diffcli.diffusion import filters
    from diffcli.generation import guidance_scale
    from diffcli.illusions import hybrid_request

    gen = generating.load_generator(model, device, "ema", offload, upscale)
    kernel, sigma = generating.hybrid_filter(gen, kernel, sigma)
    a, b = gen.resolve_prompt(far), gen.resolve_prompt(near)
    if (a.label is not None and a.label == b.label) or (a.label is None and a.text == b.text):
        console.warn(f"both prompts are {gen.label_name(a)!r}: the hybrid is just a sample of it")
    settings = generating.sampler_settings(gen, sampler, steps, stride, eta)
    scale = guidance_scale(gen, guidance)
    seed = common.pick_seed(seed)
    seeds = generating.seeds_for(seed, n)
    terms = hybrid_request(gen, [a] * n, [b] * n, scale, kernel, sigma)
    name_far, name_near = gen.label_name(a), gen.label_name(b)

    def preview(x0):
        return [("low", [*gen.to_pixels(filters.lowpass(x0, kernel, sigma))])]

    result = generating.run_generation(gen, terms, seeds, settings, title=f"hybrid {name_far} / {name_near}", quiet=quiet, json_output=json_output, preview=preview)
    if upscale:  # stage II: both prompts, the low-pass scaled to its size (also for the explanation)
        stage_two = gen.upscale_settings(illusion_guidance=scale)
        kernel, sigma = filters.scale_filter(kernel, sigma, gen.upscale_factor)
        result = gen.upscale(result, hybrid_request(gen, [a] * n, [b] * n, stage_two.guidance, kernel, sigma), seeds, stage_two)
    pixels = gen.to_pixels(result)
    low = gen.to_pixels(filters.lowpass(result, kernel, sigma))
    lo, hi = gen.config.pixel_range
    high = gen.to_pixels(filters.highpass(result, kernel, sigma) + (lo + hi) / 2)  # centred on mid-grey

    from diffcli.io.figures import figure, grid

    def panel():
        if explain:
            rows = [[pixels[i], low[i], high[i]] for i in range(n)]
            return figure(rows, col_labels=["hybrid", f"low-pass ({name_far})", f"high-pass ({name_near})"], row_labels=[f"seed {s}" for s in seeds] if n > 1 else None)
        return pixels[0] if n == 1 else grid(list(pixels))

    meta = common.metadata("hybrid", model=gen.name, seed=seed, kernel=kernel, sigma=sigma, guidance=scale, sampler=settings.sampler, steps=settings.steps, stride=settings.stride, prompts=[far, near])
    names = [f"{generating.safe_label(name_far)}-{generating.safe_label(name_near)}-{s}" for s in seeds]
    written = generating.write_outputs(list(pixels), names, out=out, out_dir=out_dir, default_name="hybrid.png", json_output=json_output, metadata=meta, per_image_meta=[{"seed": s} for s in seeds], figure_maker=panel)
    if json_output:
        console.emit_json({"model": gen.name, "outputs": written, "seed": seed, "seeds": seeds, "kernel": kernel, "sigma": sigma, "guidance": scale, "prompts": [far, near]})
