"""`diffcli noise`: the forward process, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, at one or more t.

Runs on numpy alone (no torch import, no model), so it is fast in pipelines.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli.cli import common
from diffcli.cli.options import RunOptions, choices, examples, renamed, shared

SCHEDULE_PANEL = "Schedule"
EXAMPLES = examples(
    "diffcli noise builtin:house -t 250 -t 500 -t 750 -o strip.png",
    "diffcli noise builtin:digit -t 500 --seed 1 > noisy.png      # piped: PNG bytes to stdout",
    "cat noisy.png | diffcli noise - -t 250 --seed 2 -o noisier.png   # - reads stdin",
    "diffcli noise builtin:house -t 100 --timesteps 300 --schedule cosine -o house.png",
)


@shared("run", exclude=("model", "device"))
def noise(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="Input image: a path, - for stdin, or builtin:NAME (builtin:house, builtin:digit).")],
    t: Annotated[list[int], typer.Option("-t", "--t", metavar="INT", help="Timestep to noise to, in [0, T). Repeat for a strip: -t 250 -t 500 -t 750.", rich_help_panel=SCHEDULE_PANEL)],
    timesteps: Annotated[Optional[int], typer.Option("--timesteps", metavar="T", help="Timesteps T of the schedule.  [default: 1000]", rich_help_panel=SCHEDULE_PANEL)] = None,
    schedule: Annotated[str, typer.Option("--schedule", metavar="KIND", help="Noise schedule: linear (betas 1e-4..0.02) or cosine.", rich_help_panel=SCHEDULE_PANEL, autocompletion=choices("linear", "cosine"))] = "linear",
    size: Annotated[Optional[int], typer.Option("--size", metavar="PIXELS", help="Centre-crop and resize to PIXELS x PIXELS first.")] = None,
    old_steps: Annotated[Optional[int], typer.Option("--steps", hidden=True)] = None,
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

    T = timesteps if timesteps is not None else renamed("--steps", "--timesteps", old_steps)
    result = noise_job(NoiseRequest(image, t, T, schedule, size, run.seed))
    common.emit_result(result, common.write_images(result, run, "noise.png"), run)
