"""`diffcli hybrid FAR NEAR`: one image that reads as FAR from afar (low frequencies) and NEAR up close."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli.cli import common
from diffcli.cli.options import RunOptions, SamplingOptions, shared


@shared("sampling", "run")
def hybrid(
    far: Annotated[str, typer.Argument(help="What the low frequencies show (seen from afar).")],
    near: Annotated[str, typer.Argument(help="What the high frequencies show (seen up close).")],
    kernel: Annotated[Optional[int], typer.Option("--kernel", help="Gaussian low-pass kernel size, odd (default: 33 at 64 px, scaled to the model).")] = None,
    sigma: Annotated[Optional[float], typer.Option("--sigma", help="Gaussian low-pass sigma in pixels (default: 2 at 64 px, scaled).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Write a panel: hybrid | its low-pass | its high-pass.")] = False,
    *,
    sampling: SamplingOptions,
    run: RunOptions,
) -> None:
    """Generate hybrid images (factorized diffusion): eps = lowpass(eps(x_t, FAR)) + highpass(eps(x_t, NEAR)),
    each estimate CFG-guided."""
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.generate import HybridRequest, load_generator, prepare

    model = load_generator(run.model, run.device, "ema", sampling.offload, sampling.upscale)
    request = HybridRequest(far, near, kernel, sigma, explain, sampling.n, sampling.engine(), run.seed, sampling.upscale)
    common.run_images(prepare(model, request), run, "hybrid.png")
