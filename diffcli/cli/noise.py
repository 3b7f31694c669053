"""`diffcli noise`: the forward process, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, at one or more t.

Runs on numpy alone (no torch import, no model), so it is fast in pipelines.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from diffcli.cli import common, params
from diffcli.cli.options import Output, examples, renamed
from diffcli.jobs.requests import NoiseRequest

SCHEDULE_PANEL = "Schedule"
EXAMPLES = examples(
    "diffcli noise builtin:house -t 250 -t 500 -t 750 -o strip.png",
    "diffcli noise builtin:digit -t 500 --seed 1 > noisy.png      # piped: PNG bytes to stdout",
    "cat noisy.png | diffcli noise - -t 250 --seed 2 -o noisier.png   # - reads stdin",
    "diffcli noise builtin:house -t 100 --timesteps 300 --schedule cosine -o house.png",
)


@params.options(request=NoiseRequest, run=Output)
def noise(
    *,
    old_steps: Annotated[int | None, typer.Option("--steps", hidden=True)] = None,
    request: NoiseRequest,
    run: Output,
) -> None:
    """Add Gaussian noise to an image as the diffusion forward process does at timestep t.

    One -t writes one PNG; several write a labelled strip (original, then each t), or one PNG per t
    with --out-dir. The same --seed gives the same noise (and the same noisy image as `denoise`).
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.noise import noise as noise_job

    if request.timesteps is None:
        request = replace(request, timesteps=renamed("--steps", "--timesteps", old_steps))
    result = noise_job(request)
    common.emit_result(result, common.write_images(result, run, "noise.png"), run, request.seed)
