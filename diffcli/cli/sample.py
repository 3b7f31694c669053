"""`diffcli sample`: images from a registered model, by class or prompt, with CFG, SDEdit and inpainting."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli.cli import common
from diffcli.cli.options import MODEL_PANEL, SAMPLING_PANEL, BestOf, RunOptions, SamplingOptions, Weights, examples, renamed, shared

EXAMPLES = examples(
    "diffcli sample 7 -n 8 -o sevens.png",
    "diffcli sample -n 4 --seed 0 -o grid.png    # every class, a row each",
    "diffcli sample -m fashion sneaker -n 4 -o - > sneakers.png",
    "diffcli sample --init builtin:digit -c 7 -t 900 -t 600 -o sweep.png",
)
IMAGE_PANEL = "Image-to-image"


@shared("sampling", "run")
def sample(
    classes: Annotated[Optional[list[str]], typer.Argument(metavar="CLASS", help="Classes (index or name: 7, seven, sneaker) or text prompts, one row each. Default: every class.", show_default=False)] = None,
    prompt: Annotated[Optional[list[str]], typer.Option("--class", "--prompt", "-c", "-p", metavar="CLASS", help="The same as CLASS, as an option; repeat for several rows.", rich_help_panel=MODEL_PANEL)] = None,
    init: Annotated[Optional[str], typer.Option("--init", metavar="IMAGE", help="SDEdit / image-to-image: start from this image (a path, - or builtin:NAME), noised to -t.", rich_help_panel=IMAGE_PANEL)] = None,
    t: Annotated[Optional[list[int]], typer.Option("-t", "--t", metavar="INT", help="With --init: the timestep to noise it to (lower keeps more of it); repeat for a sweep, one column per t. Default: T-1 with --mask, else T/2.", rich_help_panel=IMAGE_PANEL)] = None,
    mask: Annotated[Optional[str], typer.Option("--mask", metavar="IMAGE", help="With --init: inpaint where the mask is white, keep the rest.", rich_help_panel=IMAGE_PANEL)] = None,
    chain: Annotated[bool, typer.Option("--chain", metavar="", help="Lay out the reverse chain (x_t at 10 steps) of each sample (with --out-dir: a strip beside each image).", rich_help_panel=SAMPLING_PANEL)] = False,
    weights: Weights = "ema",
    best_of: BestOf = 1,
    start: Annotated[Optional[list[int]], typer.Option("--start", hidden=True)] = None,
    *,
    sampling: SamplingOptions,
    run: RunOptions,
) -> None:
    """Generate images with a registered model (default: the registry default, the embedded MNIST model).

    -o writes a figure (one labelled row per class or prompt), or the image itself for a single sample;
    --out-dir writes one PNG per image and prints the paths; `-o -` pipes PNG bytes.
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.generating import load_generator
    from diffcli.jobs.sample import SampleRequest, prepare

    timesteps = t or renamed("--start", "-t", start)
    model = load_generator(run.model, run.device, weights, sampling.offload, sampling.upscale)
    request = SampleRequest(
        prompts=[*(classes or []), *(prompt or [])] or None, n=sampling.n, sampling=sampling.engine(), init=init, starts=timesteps, mask=mask,
        chain=chain, seed=run.seed, upscale=sampling.upscale, best_of=best_of,
    )
    common.run_images(prepare(model, request), run, "sample.png")
