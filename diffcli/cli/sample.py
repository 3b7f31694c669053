"""`diffcli sample`: images from a registered model, by class or prompt, with CFG, SDEdit and inpainting."""

from __future__ import annotations

import time
from typing import Annotated, Optional

import typer

from diffcli import console
from diffcli.cli import common, generating
from diffcli.errors import UsageError

CHAIN_FRAMES = 10


def sample(
    prompt: Annotated[Optional[list[str]], typer.Option("--class", "--prompt", "-c", "-p", help="Class (index or name, e.g. 7, seven, sneaker) or text prompt; repeat for several rows. Default: every class.")] = None,
    n: common.Count = 1,
    sampler: common.SamplerName = None,
    steps: common.Steps = None,
    stride: common.Stride = None,
    guidance: common.Guidance = None,
    eta: common.Eta = 0.0,
    init: Annotated[Optional[str], typer.Option("--init", help="SDEdit / image-to-image: start from this image noised to --start.")] = None,
    start: Annotated[Optional[list[int]], typer.Option("--start", help="With --init: the timestep to noise it to (lower keeps more of it); repeat for a sweep, one column per start. Default: T-1 with --mask, else T/2.")] = None,
    mask: Annotated[Optional[str], typer.Option("--mask", help="With --init: inpaint where the mask is white, keep the rest.")] = None,
    chain: Annotated[bool, typer.Option("--chain", help="Write the reverse-chain strip (x_t at 10 steps) of each sample instead of the grid (with --out-dir: beside each image).")] = False,
    weights: common.Weights = "ema",
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
    """Generate images with a registered model (default: the registry default, the embedded MNIST model).

    -o writes a grid (one row per class or prompt), or the image itself for a single sample; --out-dir
    writes one PNG per image and prints the paths; `-o -` pipes PNG bytes.
    """
    common.start(quiet, json_output)
    generating.check_out_options(out, out_dir)
    generating.positive_count(n)
    if (start is not None or mask is not None) and init is None:
        raise UsageError("--start and --mask need --init (the image to start from)")
    import torch

    from diffcli.generation import ChainRecorder, guidance_scale, prompt_terms
    from diffcli.io import images
    from diffcli.io.figures import figure

    gen = generating.load_generator(model, device, weights, offload, upscale)
    settings = generating.sampler_settings(gen, sampler, steps, stride, eta)
    scale = guidance_scale(gen, guidance)
    if prompt:
        resolved = [gen.resolve_prompt(p) for p in prompt]
        if len({r.label if r.label is not None else r.text for r in resolved}) < len(resolved):
            console.warn("the same class or prompt is given more than once")
    elif gen.cond_type == "class":
        resolved = [gen.resolve_prompt(str(i)) for i in range(len(gen.labels))]
    elif gen.cond_type == "text":
        raise UsageError(f"model {gen.name!r} is text-to-image and needs --prompt TEXT")
    else:
        resolved = [None]
    row_names = [gen.label_name(p) if p is not None else "sample" for p in resolved]
    prompts = [p for p in resolved for _ in range(n)]
    seed = common.pick_seed(seed)
    seeds = generating.seeds_for(seed, len(prompts))

    init_tensor = mask_tensor = None
    starts: list[Optional[int]] = [None]
    if init is not None:
        init_image, init_name = images.open_image(init, console.notice)
        if mask is not None:
            mask_image, mask_name = images.open_image(mask, console.notice)
            if init_image.size != mask_image.size:
                raise UsageError(f"--init is {init_image.size[0]}x{init_image.size[1]} but --mask is {mask_image.size[0]}x{mask_image.size[1]}", "give a mask of the same size as the image")
            mask_tensor = torch.from_numpy(images.binary_mask(mask_image, gen.size, mask_name, console.notice))[None].repeat(len(prompts), 1, 1, 1)
        pixels = images.resize_square(images.to_pixels(init_image, gen.channels, init_name, console.notice), gen.size, init_name, console.notice)
        init_tensor = gen.to_model(pixels)[None].repeat(len(prompts), 1, 1, 1)
        if not start:
            start = [gen.schedule.timesteps - 1 if mask is not None else gen.schedule.timesteps // 2]
            console.notice(f"--start {start[0]}")
        for value in start:
            if not 0 <= value < gen.schedule.timesteps:
                raise UsageError(f"--start {value} is outside [0, {gen.schedule.timesteps})")
        starts = list(start)
    if len(starts) > 1 and chain:
        raise UsageError("--chain shows one run per sample; give one --start with it")

    recorder = ChainRecorder(_total_steps(gen, settings, starts[0]), CHAIN_FRAMES) if chain else None
    began = time.perf_counter()
    runs = []  # one result per start (one run without --init)
    for value in starts:
        result = generating.run_generation(
            gen, prompt_terms(gen, prompts, scale), seeds, settings, title=f"sample {gen.name}" + (f" from t={value}" if value is not None else ""),
            quiet=quiet, json_output=json_output, init=init_tensor, start=value, mask=mask_tensor, chain=recorder,
        )
        if upscale:  # stage II: the same prompts, guided through the same loop with the upscaler's settings
            stage_two = gen.upscale_settings()
            result = gen.upscale(result, prompt_terms(gen, prompts, stage_two.guidance), seeds, stage_two)
        runs.append(gen.to_pixels(result))
    seconds = time.perf_counter() - began
    pixels = runs[0]
    sweep = len(runs) > 1

    meta = common.metadata("sample", model=gen.name, seed=seed, sampler=settings.sampler, steps=settings.steps, stride=settings.stride, guidance=scale, eta=eta if settings.sampler == "ddim" else None, init=init, start=start, mask=mask)
    base_names = [f"{generating.safe_label(gen.label_name(p) if p else 'sample')}-{s}" for p, s in zip(prompts, seeds)]
    names = [f"{name}-t{value}" if sweep else name for value in starts for name in base_names]
    per_image = [{"seed": s, "prompt": p.text if p else None, **({"start": value} if value is not None else {})} for value in starts for p, s in zip(prompts, seeds)]

    def chain_figure(rows: range):
        labels = [f"t={t}" for t in recorder.steps] + ["result"]
        return figure([[*(gen.to_pixels(x[i : i + 1])[0] for x in recorder.x_t), pixels[i]] for i in rows], col_labels=labels, row_labels=[f"{names[i]}" for i in rows])

    def grid():
        if chain:
            return chain_figure(range(len(prompts)))
        if sweep:  # the SDEdit sweep: the input, then the result at each start, one row per sample
            init_pixels = gen.to_pixels(init_tensor[:1])[0]
            return figure([[init_pixels, *(run[i] for run in runs)] for i in range(len(prompts))], col_labels=["input", *(f"t={v}" for v in starts)], row_labels=base_names)
        if len(prompts) == 1:
            return pixels[0]
        rows = [[*pixels[i * n : (i + 1) * n]] for i in range(len(resolved))]
        if len(resolved) == 1:
            from diffcli.io.figures import grid as plain_grid

            return plain_grid(list(pixels))
        return figure(rows, row_labels=row_names)

    written = generating.write_outputs(
        [image for run in runs for image in run], names, out=out, out_dir=out_dir, default_name="sample.png", json_output=json_output,
        metadata=meta, per_image_meta=per_image, figure_maker=grid,
    )
    if chain and out_dir:
        for i, name in enumerate(names):
            path = images.prepare_out_dir(out_dir) / f"{name}-chain.png"
            images.write_png(chain_figure(range(i, i + 1)), images.OutputTarget(path), {**meta, **per_image[i]})
            written.append(str(path))
            if not json_output:
                console.emit_line(str(path))
    console.info(f"{len(prompts) * len(runs)} image(s) in {seconds:.1f} s ({settings.sampler}, {settings.steps or 'stride ' + str(settings.stride)} steps, CFG {scale:g})")
    if json_output:
        console.emit_json({
            "model": gen.name, "outputs": written, "seed": seed, "seeds": seeds, "sampler": settings.sampler,
            "steps": settings.steps, "stride": settings.stride, "guidance": scale, "prompts": [p.text if p else None for p in prompts],
            "starts": starts if init is not None else None, "seconds": round(seconds, 3),
        })


def _total_steps(gen, settings, start) -> int:
    from diffcli.generation import plan_timesteps

    return len(plan_timesteps(gen.schedule, settings, start))

