"""`diffcli sample`: images from a registered model, by class or prompt, with CFG, SDEdit and inpainting."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

import typer

from diffcli.cli import common, params
from diffcli.cli.options import Output, examples, renamed
from diffcli.jobs.requests import MODEL_PANEL, ModelChoice, SampleRequest

EXAMPLES = examples(
    "diffcli sample 7 -n 8 -o sevens.png",
    "diffcli sample -n 4 --seed 0 -o grid.png    # every class, a row each",
    "diffcli sample -m fashion sneaker -n 4 -o - > sneakers.png",
    "diffcli sample --init builtin:digit -c 7 -t 900 -t 600 -o sweep.png",
)


@params.options(
    wording={"guidance": "the model's: 3 in 0.2:0.7 for the embedded mnist"},
    request=SampleRequest,
    choice=ModelChoice,
    run=Output,
)
def sample(
    *,
    prompt: Annotated[
        list[str] | None,
        typer.Option(
            "--class",
            "--prompt",
            "-c",
            "-p",
            metavar="CLASS",
            rich_help_panel=MODEL_PANEL,
            help="The same as CLASS, as an option; repeat for several rows.",
        ),
    ] = None,
    old_start: Annotated[list[int] | None, typer.Option("--start", hidden=True)] = None,
    request: SampleRequest,
    choice: ModelChoice,
    run: Output,
) -> None:
    """Generate images with a registered model (default: the registry default, the embedded MNIST model).

    -o writes a figure (one labelled row per class or prompt), or the image itself for a single sample;
    --out-dir writes one PNG per image and prints the paths; `-o -` pipes PNG bytes.
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.generating import load_generator
    from diffcli.jobs.sample import prepare

    classes = [*(request.classes or []), *(prompt or [])] or None
    request = replace(request, classes=classes, start=request.start or renamed("--start", "-t", old_start))
    model = load_generator(choice.model, choice.device, choice.weights, choice.offload, request.upscale)
    common.run_images(prepare(model, request), run, "sample.png", request.seed)
