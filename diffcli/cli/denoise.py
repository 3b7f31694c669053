"""`diffcli denoise`: classical blur vs one-step vs iterative denoising (course Part A.1.3-A.1.5),
and the single-step denoiser's noise-level sweep (course Part B.1)."""

from __future__ import annotations

from diffcli.cli import common, params
from diffcli.cli.options import Output, examples
from diffcli.jobs.requests import DenoiseRequest, ModelChoice

EXAMPLES = examples(
    "diffcli denoise builtin:digit --compare -t 500 -o panel.png",
    "diffcli noise builtin:digit -t 500 --seed 1 | diffcli denoise - --noisy -t 500 --method onestep -o clean.png",
    "diffcli denoise builtin:house --method blur -t 250 --json > scores.json",
)


# What the iterative method does when its sampling options are left out.
WORDING = {"sampler": "ddpm, the course's", "steps": "a stride of 3 % of T"}


@params.options(
    exclude=("out_dir", "weights", "offload"),
    wording=WORDING,
    request=DenoiseRequest,
    choice=ModelChoice,
    run=Output,
)
def denoise(*, request: DenoiseRequest, choice: ModelChoice, run: Output) -> None:
    """Denoise a noisy image (or noise a clean one to -t first, then denoise it).

    blur needs no model; onestep and iterative use --model (default: the registry default).
    With --json, prints the MSE and PSNR of each result against the clean original.
    """
    common.start(run.quiet, run.json_output)
    common.check_outputs(run)
    from diffcli.jobs.denoise import denoise as denoise_job

    result = denoise_job(request, choice.model, choice.device)
    common.emit_result(result, common.write_images(result, run, "denoise.png"), run, request.seed)
