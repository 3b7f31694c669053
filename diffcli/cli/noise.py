"""`diffcli noise`: the forward process, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, at one or more t.

Runs on numpy alone (no torch import, no model), so it is fast in pipelines.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli.cli import common
from diffcli.cli.options import RunOptions, shared


@shared("run", exclude=("model", "device"))
def noise(
    image: Annotated[str, typer.Argument(help="Input image: a path, - for stdin, or builtin:NAME (builtin:house, builtin:digit).")],
    t: Annotated[list[int], typer.Option("-t", "--t", help="Timestep to noise to, in [0, steps). Repeat for a strip: -t 250 -t 500 -t 750.")],
    timesteps: Annotated[int, typer.Option("--steps", help="Number of diffusion timesteps T of the schedule.")] = 1000,
    schedule: Annotated[str, typer.Option("--schedule", help="Noise schedule: linear (betas 1e-4..0.02) or cosine.")] = "linear",
    size: Annotated[Optional[int], typer.Option("--size", help="Centre-crop and resize to SIZE x SIZE first.")] = None,
    *,
    run: RunOptions,
) -> None:
    """Add Gaussian noise to an image as the diffusion forward process does at timestep t.

    One -t writes one PNG; several write a labelled strip (original, then each t), or one PNG per t
    with --out-dir. The same --seed gives the same noise (and the same noisy image as `denoise`).
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.noise import NoiseRequest, noise as noise_job

    result = noise_job(NoiseRequest(image, t, timesteps, schedule, size, run.seed))
    common.emit_result(result, common.write_images(result, run, "noise.png"), run)
