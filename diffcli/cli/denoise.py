"""`diffcli denoise`: classical blur vs one-step vs iterative denoising (course Part A.1.3-A.1.5),
and the single-step denoiser's noise-level sweep (course Part B.1)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from diffcli.cli import common
from diffcli.cli.options import MODEL_PANEL, SAMPLING_PANEL, SAMPLERS, GuidanceInterval, RunOptions, choices, examples, shared, spoken

METHOD_PANEL, BLUR_PANEL = "Method", "Blur (Gaussian filter)"
EXAMPLES = examples(
    "diffcli denoise builtin:digit --compare -t 500 -o panel.png",
    "diffcli noise builtin:digit -t 500 --seed 1 | diffcli denoise - --noisy -t 500 --method onestep -o clean.png",
    "diffcli denoise builtin:house --method blur -t 250 --json > scores.json",
)


@shared("run", exclude=("out_dir",))
def denoise(
    image: Annotated[str, typer.Argument(metavar="IMAGE", help="Image to denoise: a path, - for stdin, or builtin:NAME.")],
    method: Annotated[str, typer.Option("--method", metavar="METHOD", rich_help_panel=METHOD_PANEL, autocompletion=choices("blur", "onestep", "iterative"), help="blur (Gaussian, no model), onestep (one noise estimate) or iterative (the reverse loop).")] = "iterative",
    t: Annotated[Optional[int], typer.Option("-t", "--t", metavar="INT", rich_help_panel=METHOD_PANEL, help="Timestep the image is (or is noised to). Default: half of T.")] = None,
    noisy: Annotated[bool, typer.Option("--noisy", metavar="", rich_help_panel=METHOD_PANEL, help="The input is already noisy at -t: do not add noise.")] = False,
    compare: Annotated[bool, typer.Option("--compare", metavar="", rich_help_panel=METHOD_PANEL, help="Write the course's panel: original | noisy | iterative | one-step | blurred.")] = False,
    kernel: Annotated[int, typer.Option("--kernel", metavar="INT", rich_help_panel=BLUR_PANEL, help="Gaussian blur kernel size (odd).")] = 5,
    sigma: Annotated[float, typer.Option("--sigma", metavar="PIXELS", rich_help_panel=BLUR_PANEL, help="Gaussian blur sigma, in pixels.")] = 2.0,
    stride: Annotated[Optional[int], typer.Option("--stride", metavar="INT", rich_help_panel=SAMPLING_PANEL, help="Iterative: visit every STRIDE-th timestep (the course's 30 at T=1000). Default: 3% of T.")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", metavar="INT", rich_help_panel=SAMPLING_PANEL, help="Iterative: use this many evenly spread steps instead of --stride.")] = None,
    sampler: Annotated[str, typer.Option("--sampler", metavar="NAME", rich_help_panel=SAMPLING_PANEL, autocompletion=choices(*SAMPLERS), help=f"Iterative: {spoken(SAMPLERS)}.")] = "ddpm",
    prompt: Annotated[Optional[str], typer.Option("--class", "--prompt", "-c", metavar="CLASS", rich_help_panel=MODEL_PANEL, help="Condition on this class / prompt (default: unconditional).")] = None,
    guidance: Annotated[Optional[float], typer.Option("--guidance", "-g", metavar="SCALE", rich_help_panel=SAMPLING_PANEL, help="Classifier-free guidance scale (default 1: none).")] = None,
    guidance_interval: GuidanceInterval = None,
    noise_sigma: Annotated[Optional[list[float]], typer.Option("--noise-sigma", metavar="SIGMA", rich_help_panel=METHOD_PANEL, help="Single-step denoiser models: add x + SIGMA*z and denoise; repeat for the course's sweep.")] = None,
    *,
    run: RunOptions,
) -> None:
    """Denoise a noisy image (or noise a clean one to -t first, then denoise it).

    blur needs no model; onestep and iterative use --model (default: the registry default).
    With --json, prints the MSE and PSNR of each result against the clean original.
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.denoise import DenoiseRequest, denoise as denoise_job

    request = DenoiseRequest(image, method, t, noisy, compare, kernel, sigma, stride, steps, sampler, prompt, guidance, noise_sigma, run.seed, guidance_interval)
    result = denoise_job(request, run.model, run.device)
    common.emit_result(result, common.write_images(result, run, "denoise.png"), run)
