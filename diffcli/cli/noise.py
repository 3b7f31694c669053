"""`diffcli noise`: the forward process, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, at one or more t.

Runs on numpy alone (no torch import, no model), so it is fast in pipelines.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli import console
from diffcli.cli import common
from diffcli.errors import UsageError


def noise(
    image: Annotated[str, typer.Argument(help="Input image: a path, - for stdin, or builtin:NAME (builtin:house, builtin:digit).")],
    t: Annotated[list[int], typer.Option("-t", "--t", help="Timestep to noise to, in [0, steps). Repeat for a strip: -t 250 -t 500 -t 750.")],
    steps: Annotated[int, typer.Option("--steps", help="Number of diffusion timesteps T of the schedule.")] = 1000,
    schedule: Annotated[str, typer.Option("--schedule", help="Noise schedule: linear (betas 1e-4..0.02) or cosine.")] = "linear",
    size: Annotated[Optional[int], typer.Option("--size", help="Centre-crop and resize to SIZE x SIZE first.")] = None,
    out: common.Out = None,
    out_dir: common.OutDir = None,
    seed: common.Seed = None,
    quiet: common.Quiet = False,
    json_output: common.Json = False,
) -> None:
    """Add Gaussian noise to an image as the diffusion forward process does at timestep t.

    One -t writes one PNG; several write a labelled strip (original, then each t), or one PNG per t
    with --out-dir. The same --seed gives the same noise (and the same noisy image as `denoise`).
    """
    common.start(quiet, json_output)
    from diffcli.diffusion.schedule import NoiseSchedule, gaussian_noise
    from diffcli.io import images
    from diffcli.io.figures import figure

    if steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")
    if schedule not in ("linear", "cosine"):
        raise UsageError(f"unknown schedule {schedule!r}", "use linear or cosine")
    for value in t:
        if not 0 <= value < steps:
            raise UsageError(f"-t {value} is outside [0, {steps})", f"timesteps go from 0 to {steps - 1}")
    common.positive("--size", size)
    if out and out_dir:
        raise UsageError("use either -o or --out-dir, not both")

    sched = NoiseSchedule(schedule, steps)
    pixels = images.load_image(image, size=size, notify=console.notice)
    seed = common.pick_seed(seed)
    eps = gaussian_noise(pixels.shape, seed)
    x0 = pixels * 2.0 - 1.0  # the [-1, 1] range diffusion models work in
    noisy = [((sched.q_sample(x0, value, eps) + 1.0) / 2.0).clip(0.0, 1.0) for value in t]
    meta = common.metadata("noise", seed=seed, schedule=schedule, steps=steps)

    written: list[str] = []
    if out_dir:
        folder = images.prepare_out_dir(out_dir)
        for value, img in zip(t, noisy):
            path = folder / f"noise-t{value:04d}.png"
            images.write_png(img, images.OutputTarget(path), {**meta, "t": value})
            written.append(str(path))
            if not json_output:
                console.emit_line(str(path))
    else:
        if len(t) == 1:
            result = noisy[0]
        else:
            result = figure([[pixels, *noisy]], col_labels=["original", *[f"t={v}" for v in t]])
        target = images.resolve_output(out, "noise.png", json_output, console.notice)
        images.write_png(result, target, {**meta, "t": list(t)})
        written.append(target.describe())
        if not target.is_stdout:
            console.info(f"wrote {target.describe()}")
    if json_output:
        console.emit_json({"outputs": written, "seed": seed, "timesteps": list(t), "schedule": schedule, "steps": steps})
