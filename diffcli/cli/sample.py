"""`diffcli sample`: images from a registered model, by class or prompt, with CFG, SDEdit and inpainting."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli.cli import common
from diffcli.cli.options import RunOptions, SamplingOptions, Weights, shared


@shared("sampling", "run")
def sample(
    prompt: Annotated[Optional[list[str]], typer.Option("--class", "--prompt", "-c", "-p", help="Class (index or name, e.g. 7, seven, sneaker) or text prompt; repeat for several rows. Default: every class.")] = None,
    init: Annotated[Optional[str], typer.Option("--init", help="SDEdit / image-to-image: start from this image noised to --start.")] = None,
    start: Annotated[Optional[list[int]], typer.Option("--start", help="With --init: the timestep to noise it to (lower keeps more of it); repeat for a sweep, one column per start. Default: T-1 with --mask, else T/2.")] = None,
    mask: Annotated[Optional[str], typer.Option("--mask", help="With --init: inpaint where the mask is white, keep the rest.")] = None,
    chain: Annotated[bool, typer.Option("--chain", help="Write the reverse-chain strip (x_t at 10 steps) of each sample instead of the grid (with --out-dir: beside each image).")] = False,
    weights: Weights = "ema",
    *,
    sampling: SamplingOptions,
    run: RunOptions,
) -> None:
    """Generate images with a registered model (default: the registry default, the embedded MNIST model).

    -o writes a grid (one row per class or prompt), or the image itself for a single sample; --out-dir
    writes one PNG per image and prints the paths; `-o -` pipes PNG bytes.
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.generate import SampleRequest, load_generator, prepare

    model = load_generator(run.model, run.device, weights, sampling.offload, sampling.upscale)
    request = SampleRequest(prompt, sampling.n, sampling.engine(), init, start, mask, chain, run.seed, sampling.upscale)
    common.run_images(prepare(model, request), run, "sample.png")
