"""`diffcli hybrid FAR NEAR`: one image that reads as FAR from afar (low frequencies) and NEAR up close."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli.cli import common
from diffcli.cli.options import BestOf, RunOptions, SamplingOptions, examples, shared

ILLUSION_PANEL = "Illusion"
EXAMPLES = examples(
    "diffcli hybrid 1 7 --explain -o hybrid.png",
    "diffcli hybrid 0 8 -n 8 --out-dir hybrids/",
    'diffcli hybrid "old man" "campfire" -m if --upscale -o fire.png',
)


@shared("sampling", "run")
def hybrid(
    far: Annotated[str, typer.Argument(metavar="FAR", help="What the low frequencies show (seen from afar).")],
    near: Annotated[str, typer.Argument(metavar="NEAR", help="What the high frequencies show (seen up close).")],
    kernel: Annotated[Optional[int], typer.Option("--kernel", metavar="INT", help="Gaussian low-pass kernel size, odd (default: the model's illusion default, see docs/illusions.md).", rich_help_panel=ILLUSION_PANEL)] = None,
    sigma: Annotated[Optional[float], typer.Option("--sigma", metavar="PIXELS", help="Gaussian low-pass sigma in pixels (default: the model's illusion default; a sigma alone gets a kernel of 3 sigma each side).", rich_help_panel=ILLUSION_PANEL)] = None,
    explain: Annotated[bool, typer.Option("--explain", metavar="", help="Lay each result out as hybrid | its low-pass | its high-pass.", rich_help_panel=ILLUSION_PANEL)] = False,
    far_first: Annotated[Optional[float], typer.Option("--far-first", metavar="SHARE", help="Share of the reverse process (from its start) that follows FAR alone, its high frequencies too (default: the model's illusion default).", rich_help_panel=ILLUSION_PANEL)] = None,
    near_last: Annotated[Optional[float], typer.Option("--near-last", metavar="SHARE", help="Share of the reverse process (up to its end) that follows NEAR alone, its low frequencies too (default: the model's illusion default).", rich_help_panel=ILLUSION_PANEL)] = None,
    best_of: BestOf = 1,
    *,
    sampling: SamplingOptions,
    run: RunOptions,
) -> None:
    """Generate hybrid images (factorized diffusion): eps = lowpass(eps(x_t, FAR)) + highpass(eps(x_t, NEAR)),
    each estimate CFG-guided.

    Sampler, steps, guidance and the low-pass default to the illusion settings measured in
    docs/illusions.md. Not every seed reads both ways: --best-of K keeps the best of K candidates per
    image, and `diffcli eval --task hybrid` measures the rate.
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.generating import load_generator
    from diffcli.jobs.hybrid import HybridRequest, prepare

    model = load_generator(run.model, run.device, "ema", sampling.offload, sampling.upscale)
    request = HybridRequest(
        far=far, near=near, kernel=kernel, sigma=sigma, explain=explain, n=sampling.n, sampling=sampling.engine(), seed=run.seed,
        upscale=sampling.upscale, best_of=best_of, far_first=far_first, near_last=near_last,
    )
    common.run_images(prepare(model, request), run, "hybrid.png")
